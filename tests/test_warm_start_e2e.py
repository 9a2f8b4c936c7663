"""Warm start through the real pipeline: the run on span 2 starts from the model blessed on span 1."""

import dataclasses

import pytest

from config import DEFAULT_CONFIG, BeamConfig, PipelineConfig
from data.world import LogSpec
from data.writer import generate_logs
from pipeline.reports.details import training_history
from pipeline.reports.run_report import load_run_report
from pipeline.runners import run_local

pytestmark = pytest.mark.e2e


def _config(log_root, span: int, train_steps: int) -> PipelineConfig:
    """The default model with warm start on ``span``: ``train_steps`` in 3 epochs, Beam in-process, no confidence
    intervals or TFLite files (the pipeline e2e tests check those), and no value floors on 5,000 events but click's
    (TFMA blesses a first model only against a value bound: no baseline yet)."""
    config = PipelineConfig.from_yaml(DEFAULT_CONFIG)
    tasks = tuple(dataclasses.replace(t, blessing=dataclasses.replace(t.blessing, bound=0.5 if t.name == "click"
                                                                      else None)) for t in config.tasks)
    return config.replace(tasks=tasks, data=dataclasses.replace(config.data, log_root=str(log_root), span=span),
                          model=dataclasses.replace(config.model, warm_start=True, train_steps=train_steps, epochs=3,
                                                    eval_steps=8),
                          beam=BeamConfig(workers=1),
                          evaluation=dataclasses.replace(config.evaluation, confidence_intervals=False),
                          serving=dataclasses.replace(config.serving, tflite=False))


def _run(output_dir, serving_dir, config):
    return load_run_report(*run_local(config, output_dir=output_dir, serving_dir=serving_dir))


def _first_validation_loss(report) -> float:
    return training_history(report.model_run_uri).curves["validation"]["loss"][0]


def test_a_warm_started_run_on_span_2_starts_with_a_lower_validation_loss_than_a_cold_one(tmp_path):
    generate_logs(LogSpec(num_events=5_000, num_users=300, num_items=150, seed=7), tmp_path / "logs", [1, 2])
    # Span 2 trains in epochs of 10 steps, less than a pass, so the first epoch still shows where training started.
    spans = {n: _config(tmp_path / "logs", span=n, train_steps=300 if n == 1 else 30) for n in (1, 2)}
    warm_dirs = str(tmp_path / "warm"), str(tmp_path / "warm-serving")
    cold_dirs = str(tmp_path / "cold"), str(tmp_path / "cold-serving")
    assert _run(*warm_dirs, spans[1]).blessed, "the span-1 model must be blessed to be a starting point"
    warm = _first_validation_loss(_run(*warm_dirs, spans[2]))
    cold = _first_validation_loss(_run(*cold_dirs, spans[2]))  # nothing blessed there yet: starts cold
    assert warm < cold
