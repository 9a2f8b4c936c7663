"""The exact scores on arrays that a task's ``score`` (benchmarks, Bayes limits) reads."""

import numpy as np
import pytest

from models.evaluation.scores import rmse, roc_auc


def test_roc_auc_exact_with_a_tie():
    # Positive/negative pairs: (.9,.9) tie=0.5, (.9,.1)=1, (.3,.9)=0, (.3,.1)=1, (.5,.9)=0, (.5,.1)=1.
    assert roc_auc(np.array([1, 0, 1, 0, 1]), np.array([0.9, 0.9, 0.3, 0.1, 0.5])) == pytest.approx(3.5 / 6)
    assert roc_auc(np.array([0, 0, 1]), np.array([0.1, 0.2, 0.3])) == 1.0
    assert roc_auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5
    with pytest.raises(ValueError, match="both"):
        roc_auc(np.array([1, 1]), np.array([0.1, 0.2]))


def test_rmse_exact():
    assert rmse(np.array([1.0, 3.0]), np.array([2.0, 1.0])) == pytest.approx(np.sqrt((1 + 4) / 2))
