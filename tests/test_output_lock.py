"""One run per output folder; executions left RUNNING by a killed run are marked FAILED by the next."""

import fcntl

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.cli.main import main
from pipeline.guards.output_lock import LOCK_FILE
from pipeline.metadata import fail_stale_executions


def test_a_second_run_on_a_held_output_folder_is_refused_at_once(good_logs, tmp_path, capsys):
    output_dir = tmp_path / "out"
    output_dir.mkdir()
    with open(output_dir / LOCK_FILE, "w") as held:  # what a running `mtl run` holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        code = main(["run", "--log-root", str(good_logs), "--output-dir", str(output_dir),
                     "--serving-dir", str(tmp_path / "serving")])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert f"{output_dir}: another `mtl run` is using this output folder" in line
    assert sorted(p.name for p in output_dir.iterdir()) == [LOCK_FILE, "logs"]  # no pipeline root, no metadata
    assert not (tmp_path / "serving").exists()


def _store(path):
    connection = metadata_store_pb2.ConnectionConfig()
    connection.sqlite.filename_uri = str(path)
    connection.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return metadata_store.MetadataStore(connection)


def test_executions_left_running_are_marked_failed(tmp_path):
    store = _store(tmp_path / "metadata.db")
    trainer = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Trainer"))
    running, done = (metadata_store_pb2.Execution(type_id=trainer, last_known_state=state) for state in
                     (metadata_store_pb2.Execution.RUNNING, metadata_store_pb2.Execution.COMPLETE))
    running_id, done_id = store.put_executions([running, done])
    assert fail_stale_executions(str(tmp_path / "metadata.db")) == [running_id]
    states = {e.id: e.last_known_state for e in store.get_executions()}
    assert states == {running_id: metadata_store_pb2.Execution.FAILED, done_id: metadata_store_pb2.Execution.COMPLETE}
    assert fail_stale_executions(str(tmp_path / "metadata.db")) == []
    assert fail_stale_executions(str(tmp_path / "absent.db")) == []
