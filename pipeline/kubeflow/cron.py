"""Cron expressions for Kubeflow Pipelines recurring runs.

KFP's scheduler reads a recurring run's cron with robfig/cron v1's ``cron.Parse``: second, minute, hour, day of
month, month, day of week, with the day of week optional. A standard five-field crontab line sent as is would be
read shifted by one field ('0 3 * * *' = second 0 of minute 3 of every hour), so a five-field line is turned into
KFP's six fields by prefixing second 0 ('0 0 3 * * *' = 03:00 every day)."""

from config import UserError

# name, lowest, highest, the names it accepts for its values (robfig/cron v1's bounds and names)
_FIELDS = (
    ("second", 0, 59, {}), ("minute", 0, 59, {}), ("hour", 0, 23, {}), ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}),
    ("day of week", 0, 6, {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}),
)


def kfp_cron(expression: str) -> str:
    """The six-field cron that KFP runs at the times ``expression`` means: five fields (standard crontab: minute
    hour day-of-month month day-of-week) get second 0 in front, six (KFP's own, second first) stay as they are.
    Called by cli.py's schedule-kubeflow before anything is compiled or sent; raises UserError naming the bad
    field."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise _bad(expression, f"expected 5 or 6 fields, got {len(fields)}")
    fields = ["0", *fields] if len(fields) == 5 else fields
    for value, (name, low, high, names) in zip(fields, _FIELDS, strict=True):
        for part in value.split(","):
            if not _valid_range(part, low, high, names):
                raise _bad(expression, f"{name} '{part}' is not * or a value, range or step within {low}-{high}")
    return " ".join(fields)


def _valid_range(part: str, low: int, high: int, names: dict[str, int]) -> bool:
    """Whether ``part`` is one of robfig/cron's ranges: * or ?, N, N-M, each optionally /STEP (STEP >= 1)."""
    span, _, step = part.partition("/")
    if step and not (step.isdigit() and int(step) >= 1):
        return False
    if span in ("*", "?"):
        return True
    bounds = [names.get(bound.lower(), int(bound) if bound.isdigit() else None) for bound in span.split("-")]
    if len(bounds) > 2 or None in bounds:
        return False
    return low <= bounds[0] <= bounds[-1] <= high


def _bad(expression: str, problem: str) -> UserError:
    return UserError(f"--cron '{expression}': {problem}; give five fields (minute hour day-of-month month "
                     "day-of-week, e.g. '0 3 * * *' for 03:00 every day) or KFP's six (second first, '0 0 3 * * *')")
