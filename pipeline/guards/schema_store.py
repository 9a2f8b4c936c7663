"""The accepted schema of an output folder: what later spans are judged against.

The first run in an output folder that passes validation accepts the schema SchemaGen inferred from its span
(run_local); `mtl schema accept` accepts the newest run's inferred schema, after a user decided that a reported
change of the data is real. A ``data.schema_path`` in the config overrides both.
"""

import glob
import os
import shutil

from config import UserError

ACCEPTED_SCHEMA = os.path.join("accepted_schema", "schema.pbtxt")


def accepted_schema_path(output_dir: str) -> str:
    """Where the output folder keeps its accepted schema (the file may not exist yet)."""
    return os.path.join(os.path.abspath(output_dir), ACCEPTED_SCHEMA)


def accept_latest_schema(output_dir: str) -> str:
    """Copies the schema that SchemaGen inferred in the newest run to the accepted place; returns that path.
    Raises UserError when no run in ``output_dir`` has inferred one."""
    inferred = glob.glob(os.path.join(os.path.abspath(output_dir), "pipeline_root", "SchemaGen", "schema", "*",
                                      "schema.pbtxt"))
    if not inferred:
        raise UserError(f"{output_dir}: no run has inferred a schema here yet; run `mtl run --output-dir "
                        f"{output_dir}` first")
    newest = max(inferred, key=lambda path: int(os.path.basename(os.path.dirname(path))))
    destination = accepted_schema_path(output_dir)
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    shutil.copyfile(newest, destination + ".tmp")
    os.replace(destination + ".tmp", destination)
    return destination
