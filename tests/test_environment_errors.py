"""Failures of the machine end `mtl` with one line naming the resource and what to do (exit 2), not a traceback."""

import errno
import os

import pytest

from pipeline.cli.environment import environment_problem
from pipeline.cli.main import main

WHERE = {"output_dir": "/nowhere/outputs", "metadata_path": "/nowhere/outputs/metadata.db"}


def _raised_inside(error: BaseException) -> BaseException:
    """``error`` as the cause of a library's own exception, as TFX and Beam re-raise them."""
    try:
        try:
            raise error
        except BaseException as inner:
            raise RuntimeError("Component Transform failed") from inner
    except RuntimeError as outer:
        return outer


@pytest.mark.parametrize("error, line", [
    (OSError(errno.ENOSPC, "No space left on device", "/nowhere/outputs/pipeline_root/Transform/x"),
     "/nowhere/outputs/pipeline_root/Transform/x: no space left on its device; free space there"),
    (RuntimeError("Failed to write file /nowhere/serving/tmp.pb: No space left on device"),
     "/nowhere/outputs: no space left on its device"),
    (PermissionError(errno.EACCES, "Permission denied", "/nowhere/serving/recs"),
     "/nowhere/serving/recs: not writable (permission denied); make it writable, or pass another --output-dir"),
    (OSError(errno.EROFS, "Read-only file system", "/nowhere/outputs/logs"), "/nowhere/outputs/logs: not writable"),
    (RuntimeError("Error when executing query: file is not a database query: CREATE TABLE IF NOT EXISTS `Type`"),
     "/nowhere/outputs/metadata.db: the metadata store is damaged or unreadable (file is not a database); move it"),
    (RuntimeError("Error when executing query: database is locked query: INSERT INTO"),
     "/nowhere/outputs/metadata.db: the metadata store is locked by another process"),
    (RuntimeError("Concurrent writes aborted after max number of retries."),
     "/nowhere/outputs/metadata.db: the metadata store is locked by another process"),
])
def test_each_environment_failure_is_one_line_naming_its_resource(error, line):
    assert environment_problem(_raised_inside(error), **WHERE).startswith(line)
    assert "\n" not in environment_problem(error, **WHERE)


def test_a_bug_is_not_taken_for_the_machine():
    assert environment_problem(_raised_inside(KeyError("click")), **WHERE) is None
    assert environment_problem(ValueError("shapes (3,) and (4,) not aligned"), **WHERE) is None


def test_a_damaged_metadata_store_stops_the_run_with_one_line(good_logs, tmp_path, capsys):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "metadata.db").write_bytes(os.urandom(4096))
    code = main(["run", "--log-root", str(good_logs), "--output-dir", str(outputs),
                 "--serving-dir", str(tmp_path / "serving")])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and line == (
        f"mtl run: {outputs}/metadata.db: the metadata store is damaged or unreadable (file is not a database); move "
        "it aside (its recorded runs go with it) or pass another --output-dir, and run again")
    assert not (tmp_path / "serving").exists()
