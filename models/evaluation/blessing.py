"""A head's blessing rule: one object that the EvalConfig turns into TFMA's threshold (``eval_config``), the
blessing gate applies to the change against the baseline (``components.blessing_gate``) and the report prints as
the rule a head passed or failed. Free of TFMA, so the checks before a run can read it."""

from __future__ import annotations

from dataclasses import dataclass

from config import ChangeEvidence


@dataclass(frozen=True)
class BlessingRule:
    """A bound on a head's key metric (``metric``, TFMA's name; none: no bound) and a largest move against the
    baseline in the wrong direction (``tolerance``), which counts as a regression only with the ``evidence`` the
    rule asks for (``config.ChangeEvidence``)."""

    metric: str
    higher_is_better: bool
    bound: float | None
    tolerance: float
    evidence: ChangeEvidence = ChangeEvidence.INTERVAL

    def describe(self) -> str:
        """The rule for a person, e.g. '>= 0.55, change >= -0.01 or its interval reaches 0'."""
        parts = [f"{'>=' if self.higher_is_better else '<='} {self.bound:g}"] if self.bound is not None else []
        change = f"change {'>= -' if self.higher_is_better else '<= +'}{self.tolerance:g}"
        parts.append(change + (" or its interval reaches 0" if self.evidence == ChangeEvidence.INTERVAL else ""))
        return ", ".join(parts)

    def refuses_change(self, change: float, interval: tuple[float, float] | None) -> bool:
        """Whether ``change`` (candidate minus baseline) with its 95% paired ``interval`` (None: not computed) is a
        regression: worse than the tolerance and, with ``interval`` evidence and an interval, the interval's
        better end still worse than no change. A NaN change (e.g. AUC of one class) is no evidence either way."""
        worse_by = -change if self.higher_is_better else change
        if not worse_by > self.tolerance:
            return False
        if self.evidence == ChangeEvidence.POINT or interval is None or interval[0] != interval[0] \
                or interval[1] != interval[1]:
            return True
        better_end = interval[1] if self.higher_is_better else interval[0]
        return better_end < 0 if self.higher_is_better else better_end > 0
