"""Test setup (the project's config package before anything that loads TensorFlow: it chooses Keras 2) and fixtures
shared by test modules."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import config  # noqa: E402,F401  (sets TF_USE_LEGACY_KERAS)

# isort: split
import pytest  # noqa: E402
from helpers import GOOD_LOG_EVENTS  # noqa: E402


@pytest.fixture(scope="session")
def good_logs(tmp_path_factory):
    """A log root with one small, valid span (span-1) of GOOD_LOG_EVENTS generated events."""
    from data.world import LogSpec
    from data.writer import generate_logs

    root = tmp_path_factory.mktemp("good")
    generate_logs(LogSpec(num_events=GOOD_LOG_EVENTS, num_users=50, num_items=30, seed=1), root, [1])
    return root
