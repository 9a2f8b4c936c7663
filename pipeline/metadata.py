"""Access to a local run's ML Metadata store (the sqlite file run_local returns): the recorded runs, what each
component of a run produced, and the executions a killed run left RUNNING. The runners, the guards and the reports
read MLMD through here."""

from __future__ import annotations

import os

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

METADATA_FILE = "metadata.db"  # inside a run's output folder


def store_path(output_dir: str) -> str:
    """The sqlite MLMD file of the runs that use ``output_dir``."""
    return os.path.join(os.path.abspath(output_dir), METADATA_FILE)


def open_store(path: str, *, writable: bool = False) -> metadata_store.MetadataStore:
    """The sqlite MLMD store at ``path``, read-only unless ``writable``."""
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = path
    if not writable:
        connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(connection)


def runs_newest_first(store: metadata_store.MetadataStore) -> list:
    """The pipeline_run contexts recorded in ``store``, newest first."""
    runs = store.get_contexts_by_type("pipeline_run")
    return sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id), reverse=True)


def run_ids(path: str) -> list[str]:
    """The pipeline runs recorded in the MLMD at ``path``, newest first (run_local returns the first; `mtl runs`
    lists them)."""
    return [c.name for c in runs_newest_first(open_store(path))]


def produced(store: metadata_store.MetadataStore, run_context_id: int) -> dict[str, tuple]:
    """{component type's short name: (its execution in the run, {artifact type name: the artifacts it output})}."""
    type_names = {t.id: t.name.rsplit(".", 1)[-1] for t in store.get_execution_types()}
    artifact_types = {t.id: t.name for t in store.get_artifact_types()}
    outputs_of = {}
    for execution in store.get_executions_by_context(run_context_id):
        outputs = [e.artifact_id for e in store.get_events_by_execution_ids([execution.id])
                   if e.type == metadata_store_pb2.Event.OUTPUT]
        by_type = {}
        for artifact in store.get_artifacts_by_id(outputs):
            by_type.setdefault(artifact_types[artifact.type_id], []).append(artifact)
        outputs_of[type_names[execution.type_id]] = (execution, by_type)
    return outputs_of


def ingested(outputs: dict[str, tuple]) -> tuple[str, object] | None:
    """(the log folder, the Examples artifact) that ImportExampleGen ingested in a run (``produced``'s result), or
    None when it did not run."""
    if "ImportExampleGen" not in outputs:
        return None
    execution, artifacts = outputs["ImportExampleGen"]
    (examples,) = artifacts["Examples"]
    return execution.custom_properties["input_base"].string_value, examples


def pushed_destination(outputs: dict[str, tuple]) -> str | None:
    """Where the run's Pusher pushed the model (``produced``'s result), or None when it pushed nothing."""
    for artifact in outputs.get("AtomicPusher", (None, {}))[1].get("PushedModel", []):
        if artifact.custom_properties["pushed"].int_value:
            return artifact.custom_properties["pushed_destination"].string_value
    return None


def serving_check(outputs: dict[str, tuple]) -> str | None:
    """The serving check's verdict in a run (``produced``'s result): "passed: ..." or "FAILED: <the check and by
    how much>", or None when it did not run."""
    for artifact in outputs.get("ServingCheck", (None, {}))[1].get("InfraBlessing", []):
        reason = artifact.custom_properties["reason"].string_value
        passed = artifact.custom_properties["blessed"].int_value
        return reason if passed or reason.startswith("not checked") else f"FAILED: {reason}"
    return None


def pushed_version(destination: str | None) -> str | None:
    """The version folder's name of a pushed destination (``<serving-dir>/<name>/<version>/``)."""
    return destination.rstrip("/").rsplit("/", 1)[-1] if destination else None


def artifact_span(artifact) -> int:
    """The span of an Examples artifact (a custom property in TFX 1.16, a declared one in some versions)."""
    properties = artifact.custom_properties if "span" in artifact.custom_properties else artifact.properties
    return properties["span"].int_value


def fail_stale_executions(path: str) -> list[int]:
    """Marks every execution recorded as RUNNING in the sqlite MLMD at ``path`` as FAILED (call it only while
    holding the output folder's lock: then no run is alive to own them); returns their ids."""
    if not os.path.exists(path):
        return []
    store = open_store(path, writable=True)
    stale = [e for e in store.get_executions() if e.last_known_state == metadata_store_pb2.Execution.RUNNING]
    for execution in stale:
        execution.last_known_state = metadata_store_pb2.Execution.FAILED
        execution.custom_properties["failure_reason"].string_value = "its run ended before it did (killed)"
    if stale:
        store.put_executions(stale)
    return [e.id for e in stale]


def runs_that_trained(path: str, input_base: str, span: int) -> list[tuple[str, str | None]]:
    """(run id, pushed version or None) of every run recorded in the MLMD at ``path`` that ingested ``span`` of the
    logs at ``input_base`` and trained a model on it, newest first."""
    if not os.path.exists(path):
        return []
    store = open_store(path)
    trained = []
    for run in runs_newest_first(store):
        outputs = produced(store, run.id)
        source = ingested(outputs)
        if source is None or not outputs.get("Trainer", (None, {}))[1].get("Model"):
            continue
        base, examples = source
        if os.path.abspath(base) != os.path.abspath(input_base) or artifact_span(examples) != span:
            continue
        trained.append((run.name, pushed_version(pushed_destination(outputs))))
    return trained
