"""A head's blessing rule: one object that the EvalConfig turns into TFMA's threshold (``eval_config``) and the
report prints as the rule a head passed or failed. Free of TFMA, so the checks before a run can read it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BlessingRule:
    """A bound on a head's key metric (``metric``, TFMA's name; none: no bound) and a largest move against the
    baseline in the wrong direction (``tolerance``)."""

    metric: str
    higher_is_better: bool
    bound: float | None
    tolerance: float

    def describe(self) -> str:
        """The rule for a person, e.g. '>= 0.55, change >= -0.01'."""
        parts = [f"{'>=' if self.higher_is_better else '<='} {self.bound:g}"] if self.bound is not None else []
        parts.append(f"change {'>= -' if self.higher_is_better else '<= +'}{self.tolerance:g}")
        return ", ".join(parts)
