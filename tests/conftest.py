"""Test setup (Keras 2 must be chosen before TensorFlow is first imported) and fixtures shared by test modules."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


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
