"""A Kubeflow Pipelines API server, through the pinned kfp client (kfp.Client, KFP's v2beta1 REST API): uploads a
compiled spec (a new pipeline, or a new version of the pipeline of that name) and starts one run or a recurring run
of it. cli.py's submit-kubeflow and schedule-kubeflow drive it step by step; it knows nothing else of the project.

The spec that compile-kubeflow writes is a Vertex-style PipelineJob (``{"displayName", "pipelineSpec",
"runtimeConfig"}``); a KFP server takes the bare PipelineSpec, as YAML, so that part is what gets uploaded, and the
PipelineJob's pipeline root (``runtimeConfig.gcsOutputDirectory``) goes with each run."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import io
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator

import kfp
import kfp_server_api
import urllib3
import yaml

from config import UserError

_HINTS = {
    401: "give a valid --existing-token or --cookies",
    403: "give a valid --existing-token or --cookies, and in a multi-user deployment your --namespace",
    404: "check that --host is the Kubeflow Pipelines URL (the one whose /apis/v2beta1/healthz answers)",
    409: "the server already holds one of that name",
}


@dataclasses.dataclass(frozen=True)
class Upload:
    """A pipeline version on the server, ready to run; ``new_pipeline`` when the upload created the pipeline."""

    pipeline_name: str
    pipeline_id: str
    version_id: str
    new_pipeline: bool
    pipeline_root: str | None
    url: str


@dataclasses.dataclass(frozen=True)
class Started:
    """A run or a recurring run the server accepted: its id and its page in the KFP UI."""

    id: str
    url: str


class KubeflowPipelines:
    """One KFP API server at ``host``, with kfp.Client's own auth: a bearer token (``existing_token``), session
    cookies (``cookies``, e.g. 'authservice_session=...') and, in a multi-user deployment, the user's namespace.
    Every error answer (server unreachable, refused credentials, HTTP 4xx, a failing server's 5xx) comes out as a
    one-line UserError naming the host and what to do."""

    def __init__(self, host: str, *, namespace: str | None = None, existing_token: str | None = None,
                 cookies: str | None = None):
        if not host.startswith(("http://", "https://")):
            raise UserError(f"--host '{host}': give the URL with its scheme, e.g. http://localhost:8080")
        self.host = host.rstrip("/")
        auth = {"namespace": namespace, "existing_token": existing_token, "cookies": cookies}
        if not namespace and not _client_finds_credentials(self.host):
            self._check_healthz(existing_token, cookies)  # kfp.Client retries a refused /healthz for 25 s
        with self._calls("ask /healthz"):  # only without a namespace: whether the deployment is multi-user
            self._client = kfp.Client(host=self.host, **{key: value for key, value in auth.items() if value})

    def _check_healthz(self, existing_token: str | None, cookies: str | None) -> None:
        """One GET of /apis/v2beta1/healthz with the credentials given: an answer that refuses them (401, 403) or
        any other HTTP error is one UserError at once; an unreachable server is left to kfp.Client's own message."""
        headers = {"Authorization": f"Bearer {existing_token}"} if existing_token else {}
        if cookies:
            headers["Cookie"] = cookies
        try:
            answer = urllib3.PoolManager(retries=False, timeout=10.0).request(
                "GET", f"{self.host}/apis/v2beta1/healthz", headers=headers)
        except urllib3.exceptions.HTTPError:
            return
        if answer.status in (401, 403):
            raise UserError(f"--host {self.host}: unauthorized (HTTP {answer.status} on /apis/v2beta1/healthz): pass "
                            "--existing-token or --cookies that the server accepts")
        if answer.status >= 400:
            raise UserError(f"--host {self.host}: HTTP {answer.status} on /apis/v2beta1/healthz "
                            f"({_message(answer.data)}); {_hint(answer.status)}")

    def upload(self, spec_path: str) -> Upload:
        """Uploads the PipelineSpec in the PipelineJob JSON at ``spec_path``: a new pipeline named after its
        pipelineInfo.name, or a new version of the pipeline of that name when the server has one (looked up with
        get_pipeline_id). Returns the version to run."""
        with open(spec_path) as f:
            job = json.load(f)
        spec = job["pipelineSpec"]
        name = spec["pipelineInfo"]["name"]
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, f"{name}.yaml")  # the server takes YAML (or an archive of it)
            with open(path, "w") as f:
                yaml.safe_dump(spec, f, sort_keys=False)
            with self._calls(f"look up pipeline '{name}'"):
                pipeline_id = self._client.get_pipeline_id(name)
            new_pipeline = pipeline_id is None
            if new_pipeline:
                with self._calls(f"upload pipeline '{name}'"):
                    pipeline_id = self._client.upload_pipeline(path, pipeline_name=name).pipeline_id
                    version_id = self._client.list_pipeline_versions(  # the server made its first version
                        pipeline_id, sort_by="created_at desc", page_size=1).pipeline_versions[0].pipeline_version_id
            else:
                with self._calls(f"upload a version of pipeline '{name}'"):
                    version_id = self._client.upload_pipeline_version(
                        path, f"{name}-{_stamp()}", pipeline_id=pipeline_id).pipeline_version_id
        pipeline_root = job.get("runtimeConfig", {}).get("gcsOutputDirectory")
        return Upload(name, pipeline_id, version_id, new_pipeline, pipeline_root,
                      f"{self.host}/#/pipelines/details/{pipeline_id}/version/{version_id}")

    def experiment(self, name: str) -> str:
        """The id of the experiment ``name`` (in the client's namespace), created if absent."""
        with self._calls(f"find or create experiment '{name}'"):
            return self._client.create_experiment(name).experiment_id

    def run(self, upload: Upload, experiment_id: str, params: dict) -> Started:
        """Starts one run of ``upload`` in the experiment, with ``params`` as runtime parameters."""
        with self._calls("create the run"):
            run = self._client.run_pipeline(
                experiment_id, f"{upload.pipeline_name}-{_stamp()}", params=params, pipeline_id=upload.pipeline_id,
                version_id=upload.version_id, pipeline_root=upload.pipeline_root)
        return Started(run.run_id, f"{self.host}/#/runs/details/{run.run_id}")

    def schedule(self, upload: Upload, experiment_id: str, cron: str, params: dict) -> Started:
        """Creates an enabled recurring run of ``upload`` on KFP's six-field ``cron`` (kfp_cron.kfp_cron), at most
        one run at a time and no catch-up of the times it missed."""
        with self._calls("create the recurring run"):
            recurring = self._client.create_recurring_run(
                experiment_id, f"{upload.pipeline_name} ({cron})", cron_expression=cron, max_concurrency=1,
                no_catchup=True, params=params, pipeline_id=upload.pipeline_id, version_id=upload.version_id,
                enabled=True, pipeline_root=upload.pipeline_root)
        return Started(recurring.recurring_run_id, f"{self.host}/#/recurringrun/details/{recurring.recurring_run_id}")

    @contextlib.contextmanager
    def _calls(self, step: str) -> Iterator[None]:
        """Runs kfp calls without the links kfp prints, its version warning and the log records of kfp and urllib3
        (retries, kfp's tracebacks of failed /healthz attempts); turns an unreachable server and HTTP 4xx answers
        into one-line UserErrors."""
        disabled = logging.root.manager.disable
        logging.disable(logging.ERROR)
        try:
            with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                yield
        except urllib3.exceptions.HTTPError as e:
            raise self._unreachable(step, e.reason if isinstance(e, urllib3.exceptions.MaxRetryError) else e) from None
        except kfp_server_api.ApiException as e:
            if e.status == 0:  # kfp_server_api's wrapper of an SSL error
                raise self._unreachable(step, e.reason) from None
            raise UserError(f"--host {self.host}: HTTP {e.status} {e.reason} on '{step}': {_message(e.body)}; "
                            f"{_hint(e.status)}") from None
        except TimeoutError:  # kfp.Client's five /healthz attempts, 5 s apart, all failed
            raise UserError(f"--host {self.host}: no answer from /apis/v2beta1/healthz in five attempts; check the "
                            "URL and your --existing-token or --cookies (--namespace skips this check)") from None
        finally:
            logging.disable(disabled)

    def _unreachable(self, step: str, reason) -> UserError:
        reason = str(reason).rsplit("): ", 1)[-1]  # without urllib3's "HTTPConnection(host=..., port=...): "
        return UserError(f"--host {self.host}: cannot reach the Kubeflow Pipelines API to {step} "
                         f"({_one_line(reason)}); check the URL and that the server, or a port-forward to it, is up")


def _hint(status: int) -> str:
    if status >= 500:
        return ("the server failed: try again later, and if it goes on, read the KFP API server's log "
                "(kubectl logs -n kubeflow deploy/ml-pipeline)")
    return _HINTS.get(status, "fix what the server names")


def _client_finds_credentials(host: str) -> bool:
    """Whether kfp.Client gets credentials by itself for ``host`` (Google IAP, or a Google token for a
    *.googleusercontent.com host): then only it can ask the server."""
    return bool(os.environ.get("KF_PIPELINES_IAP_OAUTH2_CLIENT_ID") or os.environ.get(
        "KF_PIPELINES_APP_OAUTH2_CLIENT_ID")) or "googleusercontent.com" in host


def _message(body) -> str:
    """The error message in a KFP error answer (a google.rpc.Status JSON), else the body itself, on one line."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body or "")
    try:
        answer = json.loads(text)
    except ValueError:
        return _one_line(text)
    return _one_line(str(answer.get("message") or answer.get("error_message") or answer) if isinstance(answer, dict)
                     else text)


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _stamp() -> str:
    """Now in UTC to the microsecond, for unique run and version names (KFP refuses a second version of one name)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H%M%S-%f")
