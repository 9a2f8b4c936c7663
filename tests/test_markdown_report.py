"""The markdown report (report.md, and what `mtl run` prints): values from the logs render as the text they are."""

from pipeline.reports.markdown import format_report
from pipeline.reports.run_report import OVERALL, RunReport
from pipeline.reports.text import markdown_text


def test_a_tag_or_a_cell_separator_from_the_logs_is_text():
    report = RunReport(metrics={(OVERALL, "click"): {"auc": 0.7},
                                ("device=<script>alert(1)</script>", "click"): {"auc": 0.6},
                                ("item_category=<img src=x onerror=alert(1)>|x", "click"): {"auc": 0.5}},
                       blessed=True, span=1, input_base="logs/[x](javascript:alert(1))")
    text = format_report(report)
    assert "<script>" not in text and "<img" not in text
    assert "| device=&lt;script&gt;alert(1)&lt;/script&gt; | 0.6 |" in text
    assert "| item_category=&lt;img src=x onerror=alert(1)&gt;\\|x | 0.5 |" in text
    assert "Ingested: span 1 of logs/\\[x\\](javascript:alert(1))" in text


def test_markdown_text_escapes_exactly_the_special_characters():
    assert markdown_text("a_b c.d") == "a_b c.d"
    assert markdown_text("<b>&`*|[]\\") == "&lt;b&gt;&amp;\\`\\*\\|\\[\\]\\\\"
    assert markdown_text("two\nlines") == "two lines"
