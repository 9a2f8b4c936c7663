"""`mtl submit-kubeflow` and `mtl schedule-kubeflow` drive the real kfp client over HTTP against a fake KFP API
server (fake_kfp_server.py), which records what the client sent: the compiled spec, the pipeline and its versions,
the experiment, the run or recurring run and its parameters."""

import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fake_kfp_server import API, FakeKfpServer
from test_kubeflow import COMPONENTS

from pipeline.cli.main import main
from pipeline.kubeflow.cron import kfp_cron

ROOT = Path(__file__).resolve().parent.parent
SPEC_OPTIONS = ["--image", "registry.example/mtl:1", "--pipeline-root", "gs://bucket/root", "--serving-dir",
                "gs://bucket/serving", "--log-root", "gs://bucket/logs"]
# What a first submit sends: /healthz twice without --namespace (our one check of the credentials, then kfp.Client
# on construction), then kfp.Client's look-up by name, the upload and the version it made, the experiment's look-up
# and creation, the run.
FIRST_SUBMIT = [f"GET {API}/healthz", f"GET {API}/healthz", f"GET {API}/pipelines", f"POST {API}/pipelines/upload",
                f"GET {API}/pipelines/<id>/versions", f"GET {API}/experiments", f"POST {API}/experiments",
                f"POST {API}/runs"]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    """The pipelineSpec that compile-kubeflow writes for SPEC_OPTIONS (the first compile loads TFX; the commands'
    own compiles then take about half a second)."""
    path = tmp_path_factory.mktemp("compiled") / "pipeline.json"
    assert main(["compile-kubeflow", "--output", str(path), *SPEC_OPTIONS]) == 0
    return json.loads(path.read_text())["pipelineSpec"]


@pytest.fixture
def server():
    with FakeKfpServer() as fake:
        yield fake


def mtl(command, server, tmp_path, *options) -> int:
    return main([command, "--host", server.url, "--output", str(tmp_path / "pipeline.json"), *SPEC_OPTIONS, *options])


def calls(server) -> list[str]:
    """'METHOD path' of each request, with a pipeline's id in a path as <id>."""
    return [re.sub(r"/pipelines/[0-9a-f-]{36}/", "/pipelines/<id>/", call) for call in server.calls()]


def only(server, method, path):
    (request,) = [r for r in server.requests if (r.method, r.path) == (method, f"{API}{path}")]
    return request


def test_submit_uploads_the_compiled_spec_as_a_new_pipeline_and_runs_it(compiled, server, tmp_path, capsys):
    assert mtl("submit-kubeflow", server, tmp_path, "--param", "learning_rate=0.01", "--param", "note=nightly") == 0
    assert calls(server) == FIRST_SUBMIT

    upload = only(server, "POST", "/pipelines/upload")
    assert upload.query["name"] == "recs-multitask"
    assert upload.body["filename"] == "recs-multitask.yaml"
    uploaded = yaml.safe_load(upload.body["content"])  # the bare PipelineSpec, as a KFP server takes it
    assert uploaded == compiled
    assert uploaded["pipelineInfo"]["name"] == "recs-multitask"
    for name in COMPONENTS:
        assert any(task.startswith(name) for task in uploaded["root"]["dag"]["tasks"]), name

    experiment = only(server, "POST", "/experiments").body
    assert experiment["display_name"] == "recs-multitask"  # the config's name
    (pipeline_id,) = server.pipelines
    run = only(server, "POST", "/runs").body
    assert run["pipeline_version_reference"] == {
        "pipeline_id": pipeline_id, "pipeline_version_id": server.versions[pipeline_id][0]["pipeline_version_id"]}
    assert run["experiment_id"] == server.runs[0]["experiment_id"] == next(iter(server.experiments))
    assert run["runtime_config"] == {"parameters": {"learning_rate": 0.01, "note": "nightly"},
                                     "pipeline_root": "gs://bucket/root"}

    out = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in out] == ["server", "compiled", "uploaded", "experiment", "run"]
    run_id = server.runs[0]["run_id"]
    assert out[-1] == f"run: {run_id} {server.url}/#/runs/details/{run_id}"


def test_a_second_submit_uploads_a_new_version_of_the_same_pipeline(compiled, server, tmp_path, capsys):
    assert mtl("submit-kubeflow", server, tmp_path) == 0
    first = len(server.requests)
    assert mtl("submit-kubeflow", server, tmp_path) == 0

    assert calls(server)[first:] == [f"GET {API}/healthz", f"GET {API}/healthz", f"GET {API}/pipelines",
                                     f"POST {API}/pipelines/upload_version", f"GET {API}/experiments",
                                     f"POST {API}/runs"]
    (pipeline_id,) = server.pipelines
    upload = only(server, "POST", "/pipelines/upload_version")
    assert upload.query["pipelineid"] == pipeline_id
    assert upload.query["name"].startswith("recs-multitask-")
    assert yaml.safe_load(upload.body["content"]) == compiled
    versions = server.versions[pipeline_id]
    assert len(versions) == 2
    assert [r["pipeline_version_reference"]["pipeline_version_id"] for r in server.runs] == [
        v["pipeline_version_id"] for v in versions]
    assert len(server.experiments) == 1 and server.runs[0]["experiment_id"] == server.runs[1]["experiment_id"]
    assert "uploaded: new version of pipeline recs-multitask" in capsys.readouterr().out


def test_schedule_creates_an_enabled_recurring_run_one_at_a_time_without_catch_up(compiled, server, tmp_path,
                                                                                   capsys):
    assert mtl("schedule-kubeflow", server, tmp_path, "--cron", "0 3 * * *", "--experiment", "nightly",
               "--param", "epochs=3") == 0

    assert calls(server) == [*FIRST_SUBMIT[:-1], f"POST {API}/recurringruns"]
    assert yaml.safe_load(only(server, "POST", "/pipelines/upload").body["content"]) == compiled
    assert only(server, "POST", "/experiments").body["display_name"] == "nightly"
    recurring = only(server, "POST", "/recurringruns").body
    assert recurring["trigger"] == {"cron_schedule": {"cron": "0 0 3 * * *"}}  # KFP's six fields: 03:00 daily
    assert int(recurring["max_concurrency"]) == 1
    assert recurring["no_catchup"] is True
    assert recurring["mode"] == "ENABLE"
    assert recurring["experiment_id"] == next(iter(server.experiments))
    (pipeline_id,) = server.pipelines
    assert recurring["pipeline_version_reference"]["pipeline_id"] == pipeline_id
    assert recurring["runtime_config"] == {"parameters": {"epochs": 3}, "pipeline_root": "gs://bucket/root"}
    recurring_id = server.recurring_runs[0]["recurring_run_id"]
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith(
        f"{recurring_id} on cron '0 0 3 * * *', one run at a time, no catch-up "
        f"{server.url}/#/recurringrun/details/{recurring_id}")


def test_auth_and_namespace_reach_the_server(compiled, server, tmp_path):
    assert mtl("submit-kubeflow", server, tmp_path, "--namespace", "team-a", "--existing-token", "t0ken",
               "--cookies", "authservice_session=abc") == 0
    assert f"GET {API}/healthz" not in server.calls()  # with a namespace, kfp.Client does not ask
    for request in server.requests:
        assert request.headers["authorization"] == "Bearer t0ken", request.path
        assert request.headers["cookie"] == "authservice_session=abc", request.path
    assert only(server, "GET", "/experiments").query["namespace"] == "team-a"
    assert only(server, "POST", "/experiments").body["namespace"] == "team-a"


def test_an_unreachable_host_is_one_line_naming_it(tmp_path):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        host = f"http://127.0.0.1:{probe.getsockname()[1]}"
    # a process of its own: its stderr is all the console shows, the libraries' log records and warnings included
    done = subprocess.run([sys.executable, "-m", "pipeline.cli.main", "submit-kubeflow", "--host", host, "--output",
                           str(tmp_path / "pipeline.json")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    err = done.stderr.strip().splitlines()
    assert len(err) == 1, done.stderr
    assert err[0].startswith(f"mtl submit-kubeflow: --host {host}: cannot reach the Kubeflow Pipelines API")
    assert not (tmp_path / "pipeline.json").exists()  # it connects before it compiles


def test_an_http_4xx_answer_is_one_line_with_the_servers_message(compiled, server, tmp_path, capsys):
    server.fail[("POST", f"{API}/pipelines/upload")] = (403, "user is not authorized to create pipelines")
    assert mtl("submit-kubeflow", server, tmp_path) == 2
    assert f"POST {API}/runs" not in server.calls()
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mtl ")]
    assert line.startswith(f"mtl submit-kubeflow: --host {server.url}: HTTP 403")
    assert "upload pipeline 'recs-multitask'" in line and "user is not authorized to create pipelines" in line


def test_refused_credentials_are_named_at_once(compiled, server, tmp_path, capsys):
    server.fail[("GET", f"{API}/healthz")] = (401, "Unauthorized")
    started = time.monotonic()
    assert mtl("submit-kubeflow", server, tmp_path) == 2
    assert time.monotonic() - started < 5  # not kfp.Client's five attempts, 5 s apart
    assert calls(server) == [f"GET {API}/healthz"]
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("mtl ")]
    assert line == (f"mtl submit-kubeflow: --host {server.url}: unauthorized (HTTP 401 on /apis/v2beta1/healthz): "
                    "pass --existing-token or --cookies that the server accepts")


def test_a_failing_server_is_one_line_not_a_traceback(compiled, server, tmp_path, capsys):
    server.fail[("POST", f"{API}/runs")] = (500, "internal error: database unavailable")
    assert mtl("submit-kubeflow", server, tmp_path) == 2
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if line.startswith("mtl ")]
    assert "Traceback" not in err and line.startswith(f"mtl submit-kubeflow: --host {server.url}: HTTP 500")
    assert "'create the run': internal error: database unavailable; the server failed: try again later" in line


@pytest.mark.parametrize("options", [["schedule-kubeflow", "--cron", "0 3 * *"],
                                     ["schedule-kubeflow", "--cron", "0 25 * * *"],
                                     ["submit-kubeflow", "--param", "no-equals-sign"]])
def test_a_bad_cron_or_param_exits_2_before_anything_is_compiled_or_sent(options, server, tmp_path, capsys):
    command, *rest = options
    assert mtl(command, server, tmp_path, *rest) == 2
    assert server.requests == []
    assert not (tmp_path / "pipeline.json").exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mtl {command}: {rest[0]} '{rest[1]}'")


@pytest.mark.parametrize("given, sent", [("0 3 * * *", "0 0 3 * * *"),
                                         ("*/15 * * * mon-fri", "0 */15 * * * mon-fri"),
                                         ("30 0 3 ? * 1-5", "30 0 3 ? * 1-5"),
                                         ("0 0 1,15 jan-jun *", "0 0 0 1,15 jan-jun *")])
def test_five_cron_fields_get_kfps_seconds_field_and_six_stay(given, sent):
    assert kfp_cron(given) == sent


@pytest.mark.parametrize("cron", ["@daily", "0 3 * * * * *", "60 * * * *", "0 3 * * 7", "*/0 * * * *",
                                  "5-1 * * * *", "0 3 1,,2 * *", "0 3 * foo *"])
def test_crons_kfp_would_refuse_or_misread_are_refused(cron):
    with pytest.raises(ValueError, match="--cron"):
        kfp_cron(cron)
