"""A stand-in for a Kubeflow Pipelines API server on 127.0.0.1: the part of the v2beta1 REST API that kfp 2.13's
Client uses to upload a pipeline or a version of one, find or create an experiment and start a run or a recurring
run (paths from kfp_server_api/api/*.py). It keeps pipelines, versions, experiments and runs in memory, answers
with the JSON the real server sends, and records every request for the tests to read."""

from __future__ import annotations

import dataclasses
import datetime
import email
import email.policy
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import yaml

API = "/apis/v2beta1"


@dataclasses.dataclass
class Request:
    """One request as the server got it: ``headers`` by lower-case name; ``body`` is the parsed JSON, or for an
    upload the uploaded file (``{"filename": ..., "content": ...}``)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: object


class FakeKfpServer:
    """The fake server, serving from a thread while used as a context manager; ``url`` is its --host.
    ``fail[(method, path)] = (status, message)`` makes it answer that request with a google.rpc.Status error."""

    def __init__(self):
        self.requests: list[Request] = []
        self.pipelines: dict[str, dict] = {}  # by id
        self.versions: dict[str, list[dict]] = {}  # by pipeline id, oldest first
        self.experiments: dict[str, dict] = {}  # by id
        self.runs: list[dict] = []
        self.recurring_runs: list[dict] = []
        self.fail: dict[tuple[str, str], tuple[int, str]] = {}
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> FakeKfpServer:
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._http.shutdown()
        self._http.server_close()

    def calls(self) -> list[str]:
        """'METHOD path' of every request so far, in order."""
        return [f"{r.method} {r.path}" for r in self.requests]

    def answer(self, request: Request) -> tuple[int, dict]:
        """The status and JSON answer to ``request``; records it first."""
        with self._lock:
            self.requests.append(request)
            if (request.method, request.path) in self.fail:
                status, message = self.fail[(request.method, request.path)]
                return status, {"code": 7 if status == 403 else 3, "message": message, "details": []}
            route = _ROUTES.get((request.method, request.path))
            if route is None and request.method == "GET" and request.path.endswith("/versions"):
                route = FakeKfpServer._list_versions
            if route is None:
                return 404, {"code": 5, "message": "Not Found", "details": []}
            return route(self, request)

    def _healthz(self, request):
        return 200, {"commit_sha": "fake", "tag_name": "2.4.0", "multi_user": False}

    def _list_pipelines(self, request):
        found = [p for p in self.pipelines.values() if _matches(p, request.query.get("filter"))]
        return 200, ({"pipelines": found, "total_size": len(found)} if found else {})

    def _upload(self, request):
        name = request.query["name"]
        if any(p["display_name"] == name for p in self.pipelines.values()):
            return 409, {"code": 6, "message": f"Failed to create a pipeline: '{name}' already exists", "details": []}
        pipeline = {"pipeline_id": str(uuid.uuid4()), "display_name": name, "created_at": _now()}
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self.versions[pipeline["pipeline_id"]] = [self._version(pipeline["pipeline_id"], name, request.body)]
        return 200, pipeline

    def _upload_version(self, request):
        pipeline_id, name = request.query["pipelineid"], request.query["name"]
        if pipeline_id not in self.versions:
            return 404, {"code": 5, "message": f"Pipeline {pipeline_id} not found", "details": []}
        if any(v["display_name"] == name for v in self.versions[pipeline_id]):
            return 409, {"code": 6, "message": f"Version '{name}' already exists", "details": []}
        version = self._version(pipeline_id, name, request.body)
        self.versions[pipeline_id].append(version)
        return 200, version

    def _version(self, pipeline_id, name, upload):
        spec = yaml.safe_load(upload["content"])
        return {"pipeline_id": pipeline_id, "pipeline_version_id": str(uuid.uuid4()), "display_name": name,
                "created_at": _now(), "pipeline_spec": spec}

    def _list_versions(self, request):
        pipeline_id = request.path.split("/")[-2]
        versions = list(self.versions.get(pipeline_id, []))
        if request.query.get("sort_by") == "created_at desc":
            versions.reverse()
        versions = versions[:int(request.query.get("page_size") or len(versions))]
        return 200, ({"pipeline_versions": versions, "total_size": len(versions)} if versions else {})

    def _list_experiments(self, request):
        found = [e for e in self.experiments.values() if _matches(e, request.query.get("filter"))
                 and e["namespace"] == request.query.get("namespace", "")]
        return 200, ({"experiments": found, "total_size": len(found)} if found else {})

    def _create_experiment(self, request):
        experiment = {"experiment_id": str(uuid.uuid4()), "display_name": request.body["display_name"],
                      "namespace": request.body.get("namespace", ""), "created_at": _now(),
                      "storage_state": "AVAILABLE"}
        self.experiments[experiment["experiment_id"]] = experiment
        return 200, experiment

    def _create_run(self, request):
        error = self._unknown_reference(request.body)
        if error:
            return 400, {"code": 3, "message": error, "details": []}
        run = {**request.body, "run_id": str(uuid.uuid4()), "state": "PENDING", "storage_state": "AVAILABLE",
               "created_at": _now()}
        self.runs.append(run)
        return 200, run

    def _create_recurring_run(self, request):
        error = self._unknown_reference(request.body)
        if error:
            return 400, {"code": 3, "message": error, "details": []}
        recurring = {**request.body, "recurring_run_id": str(uuid.uuid4()), "status": "ENABLED",
                     "max_concurrency": str(request.body.get("max_concurrency")), "created_at": _now()}
        self.recurring_runs.append(recurring)
        return 200, recurring

    def _unknown_reference(self, body) -> str | None:
        reference = body.get("pipeline_version_reference", {})
        versions = self.versions.get(reference.get("pipeline_id"), [])
        if not any(v["pipeline_version_id"] == reference.get("pipeline_version_id") for v in versions):
            return f"Pipeline version {reference} not found"
        if body.get("experiment_id") not in self.experiments:
            return f"Experiment {body.get('experiment_id')} not found"
        return None


_ROUTES = {
    ("GET", f"{API}/healthz"): FakeKfpServer._healthz,
    ("GET", f"{API}/pipelines"): FakeKfpServer._list_pipelines,
    ("POST", f"{API}/pipelines/upload"): FakeKfpServer._upload,
    ("POST", f"{API}/pipelines/upload_version"): FakeKfpServer._upload_version,
    ("GET", f"{API}/experiments"): FakeKfpServer._list_experiments,
    ("POST", f"{API}/experiments"): FakeKfpServer._create_experiment,
    ("POST", f"{API}/runs"): FakeKfpServer._create_run,
    ("POST", f"{API}/recurringruns"): FakeKfpServer._create_recurring_run,
}


def _handler(server: FakeKfpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self._serve()

        def do_POST(self):
            self._serve()

        def _serve(self):
            url = urlsplit(self.path)
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = Request(self.command, url.path, dict(parse_qsl(url.query)), headers,
                              _body(headers.get("content-type", ""), data))
            status, answer = server.answer(request)
            payload = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # no access log on stderr
            pass

    return Handler


def _body(content_type: str, data: bytes):
    """A JSON body parsed, a multipart upload's file as {"filename", "content"}, anything else None."""
    if content_type.startswith("multipart/form-data"):
        message = email.message_from_bytes(f"Content-Type: {content_type}\r\n\r\n".encode() + data,
                                           policy=email.policy.HTTP)
        part = next(message.iter_parts())
        return {"filename": part.get_filename(), "content": part.get_payload(decode=True).decode()}
    return json.loads(data) if data else None


def _matches(item: dict, filter_json: str | None) -> bool:
    """Whether ``item`` passes a v2beta1 filter of EQUALS predicates on strings (operation 1: what kfp's look-ups by
    name send); a predicate of another kind matches nothing, so a test sees it."""
    predicates = json.loads(filter_json)["predicates"] if filter_json else []
    return all(p["operation"] in (1, "EQUALS") and item.get(p["key"]) == p.get("stringValue") for p in predicates)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
