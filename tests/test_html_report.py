"""The HTML report, rendered from a hand-made RunReport: the verdict first with each head's value, baseline,
change, rule and pass/fail; a section per head with its slices and plots; the data and training sections; a
self-contained page (no script, nothing fetched)."""

import re

import pytest

from config import DEFAULT_CONFIG, PipelineConfig
from pipeline.reports.details import FeatureSummary, SplitSummary, TrainingHistory
from pipeline.reports.html_page import PastRun, render
from pipeline.reports.run_report import RunReport

CONFIG = PipelineConfig.from_yaml(DEFAULT_CONFIG)


@pytest.fixture(scope="module")
def page():
    report = RunReport(
        run_id="2026-11-26T08:00:00", started=1_795_680_000.0, blessed=False,
        metrics={("overall", "click"): {"auc": 0.61, "example_count": 49_880.0},
                 ("device=mobile", "click"): {"auc": 0.63, "example_count": 30_000.0},
                 ("overall", "conversion"): {"auc": 0.70, "example_count": 9_000.0},
                 ("overall", "watch_time"): {"root_mean_squared_error": 1.9, "example_count": 9_000.0},
                 ("overall", "interest"): {"sparse_categorical_accuracy": 0.5, "example_count": 44_000.0}},
        baseline={"click": {"auc": 0.65}, "conversion": {"auc": 0.69}},
        plots={("overall", "click"): {"calibrationHistogramBuckets": {"buckets": [
            {"numWeightedExamples": 10.0, "totalWeightedLabel": 1.0, "totalWeightedRefinedPrediction": 1.2},
            {"numWeightedExamples": 5.0, "totalWeightedLabel": 3.0, "totalWeightedRefinedPrediction": 2.5}]}},
            ("overall", "interest"): {"multiClassConfusionMatrixAtThresholds": {"matrices": [{"entries": [
                {"numWeightedExamples": 7.0}, {"predictedClassId": 1, "numWeightedExamples": 2.0},
                {"actualClassId": 1, "predictedClassId": 1, "numWeightedExamples": 5.0}]}]}}},
        failures=["click/auc changed by -0.04 against the baseline: failed change_threshold"],
        failed_heads={"click"}, span=3, input_base="/logs", seconds={"Trainer": 12.5},
        within_noise=["conversion/auc changed by -0.03 (95% interval -0.07 to 0.01, paired on the same test events) "
                      "against the baseline: worse than its tolerance 0.02, but its one-sided 95% bound +0.003 reaches "
                      "no change: within noise, not a regression (blessing.evidence: interval)"])
    data = [SplitSummary("eval", 49_880, [FeatureSummary("device", 0.0, top_values=[("mobile", 30_000.0)]),
                                           FeatureSummary("price", 0.25, mean=21.5)])]
    training = TrainingHistory({"train": {"loss": [3.0, 2.0, 1.5], "click_loss": [0.5, 0.45, 0.4],
                                          "click_loss_weight": [1.0, 1.0, 1.0], "click_auc": [0.6, 0.62, 0.64],
                                          "examples_per_second": [40_000.0, 42_000.0, 41_000.0]},
                                "validation": {"loss": [3.1, 2.9, 3.0], "click_loss": [0.51, 0.49, 0.5],
                                               "click_auc": [0.6, 0.61, 0.6]}})
    history = [PastRun("earlier", 1_795_600_000.0, {"click": 0.64}, True)]
    return render(CONFIG, report, limits={"click": {"auc": 0.77}}, data=data, anomalies=[], training=training,
                  history=history)


def _row(page, head):
    (row,) = re.findall(rf"<tr id='verdict-{head}'>(.*?)</tr>", page)
    return re.sub(r"<[^>]+>", "|", row)


def test_the_verdict_comes_first_and_says_why(page):
    assert page.index("NOT BLESSED") < page.index("<section id='head-click'")
    assert "nothing pushed" in page and "span 3 of /logs" in page
    click = _row(page, "click")
    for cell in ("auc", "0.61", "0.65", "-0.0400", "&gt;= 0.55, change &gt;= -0.01", "fail"):
        assert cell in click, (cell, click)
    assert "pass (change within noise)" in _row(page, "conversion") and "+0.0100" in _row(page, "conversion")
    assert "<li class='noise'>conversion/auc changed by -0.03 (95% interval -0.07 to 0.01" in page
    assert "or within noise" in _row(page, "conversion")
    assert "&lt;= 3, change &lt;= +0.05" in _row(page, "watch_time")
    assert "—" in _row(page, "watch_time")  # no baseline value for that head
    assert "click/auc changed by -0.04 against the baseline" in page


def test_each_head_has_its_section_slices_and_plots(page):
    for head in ("click", "conversion", "watch_time", "interest"):
        assert f"<section id='head-{head}'" in page
    click = page[page.index("<section id='head-click'"):page.index("<section id='head-conversion'")]
    assert "device=mobile" in click and "49,880" in click and "4.988e+04" not in click
    assert "Bayes limit" in click and "0.77" in click
    assert click.count("<svg class='chart'") == 2  # per-slice bars and the calibration plot
    interest = page[page.index("<section id='head-interest'"):page.index("<section id='data'")]
    assert "<table class='confusion'>" in interest and ">5<" in interest


def test_data_training_and_trend(page):
    assert "eval: 49,880 events" in page and "25.0%" in page and "mobile (30,000)" in page
    assert "no anomalies" in page
    assert "own lowest validation loss: click 2, conversion 2, watch_time 2, interest 2 of 3" in page
    assert "41,000 examples/s" in page
    training = page[page.index("<section id='training'>"):]
    assert "click: loss (mean over present labels) per epoch" in training
    assert "click: click_auc per epoch" in training and "click_loss_weight" not in training
    (row,) = re.findall(r"<tr id='verdict-click'>(.*?)</tr>", page)
    assert "<title>0.64, 0.61</title>" in row  # the earlier run's click AUC, then this run's


def test_the_page_is_self_contained(page):
    assert "<script" not in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)


def test_each_head_s_kept_epoch_follows_the_selection_rule():
    import dataclasses

    training = TrainingHistory({"validation": {"loss": [3.1, 2.9, 3.0], "click_loss": [0.51, 0.5, 0.49],
                                               "conversion_loss": [0.4, 0.3, 0.5], "watch_time_loss": [2.0, 1.9, 2.2],
                                               "interest_loss": [1.0, 0.9, 0.95]}})
    report = RunReport(run_id="r", started=1_795_680_000.0, blessed=True, metrics={}, baseline={}, plots={},
                       failures=[], failed_heads=set(), span=1, input_base="/logs", seconds={})

    def page(per_head):
        config = CONFIG.replace(model=dataclasses.replace(CONFIG.model, per_head_selection=per_head))
        return render(config, report, limits={}, data=[], anomalies=[], training=training, history=[])

    assert ("served from the epoch of its own lowest validation loss: click 3, conversion 2, watch_time 2, "
            "interest 2 of 3") in page(True)
    assert "Early stopping kept epoch 2 (lowest validation loss) of 3" in page(False)
