"""A span is trained once: a run on a span that an earlier run in the same output folder already ingested and
trained on stops before any component starts, naming that run and the version it pushed. Re-running a span is
for when its logs were rewritten or the config changed on purpose: `mtl run --force` (``force=True``)."""

from __future__ import annotations

from config import UserError
from pipeline.metadata import runs_that_trained


class SpanAlreadyTrained(UserError):
    """The span to ingest was trained on by an earlier run."""


def check_not_trained(metadata_path: str, log_root: str, span: int) -> None:
    """Raises SpanAlreadyTrained when a run recorded in ``metadata_path`` trained on ``span`` of ``log_root``."""
    earlier = runs_that_trained(metadata_path, log_root, span)
    if not earlier:
        return
    run_id, version = earlier[0]
    pushed = f"pushed as version {version}" if version else "pushed nothing"
    more = f" (and {len(earlier) - 1} run(s) before it)" if len(earlier) > 1 else ""
    raise SpanAlreadyTrained(f"span {span} of {log_root} was already trained by run {run_id}{more}, which {pushed}; "
                             "run the next span when it lands, or pass --force to train on this one again")
