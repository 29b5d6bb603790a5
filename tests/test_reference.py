"""The published RemBERT figures and the per-language comparison with a run's report
(`kemo.evaluation.reference`, `benchmarks/language_table.py`)."""

import math

from conftest import load_benchmark
from kemo.evaluation.reference import REMBERT_TEST_MACRO_F1, compare_with_reference, summarise


def test_the_figures_are_the_papers_24_languages_with_its_mean():
    assert len(REMBERT_TEST_MACRO_F1) == 24
    assert not {"amh", "orm", "som", "tir"} & set(REMBERT_TEST_MACRO_F1)
    assert round(100 * sum(REMBERT_TEST_MACRO_F1.values()) / 24, 1) == 52.4  # the mean


def test_summary_counts_only_languages_with_a_figure():
    rows = compare_with_reference({"eng": 0.71, "afr": 0.30, "amh": 0.90})
    assert rows["eng"]["above"] is True and rows["afr"]["above"] is False
    assert rows["amh"] == {"f1": 0.90, "reference": None, "above": None}
    s = summarise(rows)
    assert s["languages"] == 3 and s["reported"] == 2 and s["above"] == 1
    assert math.isclose(s["mean"], (0.71 + 0.30 + 0.90) / 3)
    assert math.isclose(s["mean_reported"], (0.71 + 0.30) / 2)
    assert math.isclose(s["reference_mean"], (0.7083 + 0.3714) / 2)


def _report(f1: dict) -> dict:
    per = {lang: {"n": 10, "macro": {"f1": v}} for lang, v in f1.items()}
    setting = {"per_language": per}
    return {"dev": {"tuned_thresholds": setting, "threshold_0.5": setting},
            "validation": {"tuned_thresholds": setting},
            "meta": {"decides_with": "tuned_thresholds"}}


def test_language_table_puts_runs_side_by_side_with_means_and_counts():
    mod = load_benchmark("language_table")
    text = mod.table([("full", None, _report({"eng": 0.75, "amh": 0.5})),
                      ("capped", None, _report({"eng": 0.60, "amh": 0.4}))])
    lines = text.splitlines()
    assert lines[0].startswith("| language | dev rows | full dev |") and "capped dev" in lines[0]
    assert "| eng | 10 | 0.7500 |" in text and lines[lines.index(
        next(ln for ln in lines if ln.startswith("| eng")))].endswith("| 0.7083 | yes |")
    assert "| **mean (all)** | | 0.6250 |" in text
    assert "| **above RemBERT (of 1)** | | 1 | 1 | 1 | 0 |" in text
