"""benchmarks/track_b_table.py, the README's Track B table (reads report.json only), and
benchmarks/goemotions_table.py on a finished run."""

import json

import pytest
from conftest import load_benchmark as _load


def _report(path, val: dict, dev: dict, label_kind="intensity"):
    """A report.json of an intensity run: {lang: (r integer, r continuous)} per split."""
    def split(rows):
        return {kind: {"per_language": {lang: {"r": r[i], "per_label": {}, "rows": 100 + len(lang)}
                                        for lang, r in rows.items()},
                       "mean_r": sum(r[i] for r in rows.values()) / len(rows)}
                for i, kind in enumerate(("integer", "continuous"))}
    path.mkdir()
    (path / "report.json").write_text(json.dumps({
        "label_kind": label_kind, "validation": split(val), "dev": split(dev),
        "meta": {"fit_seconds": 1.0, "epochs_run": 1, "head": "ordinal", "best_epoch_restored": 1}}))
    return path


def test_track_b_table_puts_published_figures_beside_each_language(tmp_path):
    """Per language: each run's val and dev r (integers), the first run's continuous dev r,
    the published LaBSE / RemBERT / XLM-R figures and the floor; a zero-shot language has
    no validation figure; the means and the count above RemBERT are computed, not copied."""
    table = _load("track_b_table")
    a = _report(tmp_path / "a", {"eng": (0.70, 0.72), "amh": (0.50, 0.52)},
                {"eng": (0.66, 0.68), "amh": (0.40, 0.44), "ron": (0.60, 0.61)})
    b = _report(tmp_path / "b", {"eng": (0.60, 0.61)}, {"eng": (0.62, 0.63)})
    lines = table.table([table.read_run(f"A={a}"), table.read_run(f"B={b}")]).splitlines()
    assert lines[0].startswith("| lang | dev rows | A val r | A dev r | B val r | B dev r | A dev r (continuous) |")
    assert lines[2] == "| eng | 103 | 0.700 | 0.660 | 0.600 | 0.620 | 0.680 | 0.353 | 0.642 | 0.374 | - |"
    assert lines[3] == "| amh | 103 | 0.500 | 0.400 | - | - | 0.440 | - | - | - | 0.550 |"
    assert lines[4] == "| ron | 103 | - | 0.600 | - | - | 0.610 | 0.356 | 0.557 | 0.378 | 0.110 |"
    assert lines[5].startswith("| **mean (3)** |  | 0.600 | **0.553** | 0.600 | **0.620** | 0.577 |")
    # over the two languages RemBERT reports (eng, ron): LaBSE (0.353 + 0.356) / 2 = 0.3545
    assert lines[6] == ("| **mean over RemBERT's (2)** |  | 0.700 | **0.630** | 0.600 | **0.620** | "
                        "0.645 | 0.354 | 0.600 | 0.376 |  |")
    assert lines[-1] == "A: dev r above RemBERT's published test figure on 2 of 2 languages."


def test_track_b_table_refuses_a_binary_run(tmp_path):
    table = _load("track_b_table")
    run = _report(tmp_path / "a", {"eng": (0.5, 0.5)}, {"eng": (0.5, 0.5)}, label_kind="binary")
    with pytest.raises(SystemExit, match="not an intensity run"):
        table.read_run(str(run))


def test_goemotions_table_takes_validation_from_the_run_and_rescores_dev(tiny_run):
    """benchmarks/goemotions_table.py on any finished run: validation is the run's own
    figure (report.json), dev is re-scored from predictions_dev.csv at the run's
    thresholds and reproduces report.json's dev figure."""
    table = _load("goemotions_table")
    out = table.score_run(tiny_run)
    report = json.loads((tiny_run / "report.json").read_text())
    tuned = lambda split: report[split]["tuned_thresholds"]["overall"]["macro"]["f1"]  # noqa: E731
    assert out["val_tuned"] == tuned("validation")
    assert out["dev_tuned"] == pytest.approx(tuned("dev"), abs=1e-9)
    assert abs(out["val_tuned_from_csv"] - tuned("validation")) < 0.05
    assert "kemo tiny" in table.format_tables({"tiny": out})
