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
        """The rule for a person, e.g. '>= 0.55, change >= -0.01 or within noise'."""
        parts = [f"{'>=' if self.higher_is_better else '<='} {self.bound:g}"] if self.bound is not None else []
        change = f"change {'>= -' if self.higher_is_better else '<= +'}{self.tolerance:g}"
        parts.append(change + (" or within noise" if self.evidence == ChangeEvidence.INTERVAL else ""))
        return ", ".join(parts)

    def one_sided_bound(self, change: float, interval: tuple[float, float] | None) -> float | None:
        """The better end of the change's one-sided 95% interval, from TFMA's two-sided 95% one (symmetric about
        the change): a change this far from worse is as likely as not shown; None without a finite interval."""
        if interval is None or not all(bound == bound for bound in interval):
            return None
        better = interval[1] if self.higher_is_better else interval[0]
        return change + (better - change) * ONE_SIDED_95_OF_TWO_SIDED_95

    def refuses_change(self, change: float, interval: tuple[float, float] | None) -> bool:
        """Whether ``change`` (candidate minus baseline) with its 95% paired ``interval`` (None: not computed) is a
        regression: worse than the tolerance and, with ``interval`` evidence and an interval, shown to be worse at
        all by a one-sided test at the 5% level (``one_sided_bound`` on the worse side of no change). A NaN change
        (e.g. AUC of one class) is no evidence either way."""
        worse_by = -change if self.higher_is_better else change
        if not worse_by > self.tolerance:
            return False
        bound = self.one_sided_bound(change, interval)
        if self.evidence == ChangeEvidence.POINT or bound is None:
            return True
        return bound < 0 if self.higher_is_better else bound > 0


# The one-sided 95% half-width over the two-sided 95% one for TFMA's jackknife, whose 20 buckets give Student's t
# 19 degrees of freedom: t(0.95, 19) / t(0.975, 19). A regression is a question with one side: is the candidate
# worse? The two-sided interval's end would test it at the 2.5% level and pass more real regressions.
ONE_SIDED_95_OF_TWO_SIDED_95 = 1.7291328 / 2.0930241
