"""The HTML run report (`kemo report`): figures, PR-curve source, tables."""

import json
import re
import shutil
from pathlib import Path

import pytest

from kemo.errors import InputError
from kemo.evaluation.run_page import make_run_page, read_history


def images(page: Path) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page.read_text())


def test_report_on_the_validation_split(tiny_run, data_dir, tmp_path):
    page = make_run_page(tiny_run, data_dir=data_dir, out_dir=tmp_path / "report").path
    assert page == tmp_path / "report" / "index.html"
    srcs = images(page)
    assert set(srcs) == {"loss.png", "macro_f1.png", "label_loss.png", "pr_curves.png",
                         "label_distribution.png"}
    for src in srcs:  # relative links to files next to the page: opens offline
        assert not src.startswith(("/", "http", "file:"))
        assert (page.parent / src).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = page.read_text()
    assert "http://" not in html and "https://" not in html
    assert "validation split (carved from train" in html
    assert "checked: same rows and macro-F1" in html  # the split was re-created exactly
    report = json.loads((Path(tiny_run) / "report.json").read_text())
    for split in ("validation", "dev"):
        for key in ("threshold_0.5", "tuned_thresholds"):
            f1 = report[split][key]["overall"]["macro"]["f1"]
            assert f"<td>{f1:.4f}</td>" in html
    thresholds = json.loads((Path(tiny_run) / "thresholds.json").read_text())["thresholds"]
    assert all(f"{t:.4f}" in html for t in thresholds)


def test_report_falls_back_to_dev_then_to_a_note(tiny_run, data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("KEMO_DATA_DIR", raising=False)
    # Only dev/ available: the validation split cannot be re-created, dev can.
    (tmp_path / "data" / "dev").mkdir(parents=True)
    shutil.copy(data_dir / "dev" / "eng.csv", tmp_path / "data" / "dev" / "eng.csv")
    page = make_run_page(tiny_run, data_dir=tmp_path / "data", out_dir=tmp_path / "r1").path
    html = page.read_text()
    assert "dev split (the validation split could not be re-created" in html
    assert "train/eng.csv: file not found" in html
    assert "pr_curves.png" in images(page)
    # No data at all: everything but the PR curves, and a note saying why.
    copy = tmp_path / "run"
    shutil.copytree(tiny_run, copy)
    config = (copy / "config.toml").read_text()
    config = re.sub(r'data_dir = ".*"', f'data_dir = "{tmp_path / "moved"}"', config)
    (copy / "config.toml").write_text(config)
    page = make_run_page(copy, out_dir=tmp_path / "r2").path
    html = page.read_text()
    assert "Not drawn: validation split not available (data directory " in html
    assert "moved: not found" in html
    assert "pr_curves.png" not in images(page) and "loss.png" in images(page)


def test_history_csv_fallback_and_bad_run_dirs(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,loss,val_loss\n0,0.5,0.6\n1,0.4,0.55\n")
    assert read_history(tmp_path) == [{"epoch": 1, "loss": 0.5, "val_loss": 0.6},
                                      {"epoch": 2, "loss": 0.4, "val_loss": 0.55}]
    with pytest.raises(InputError, match="no config.toml"):
        make_run_page(tmp_path)


def test_report_cli(tiny_run, data_dir, capsys):
    from kemo.cli import main

    assert main(["report", str(tiny_run), "--data-dir", str(data_dir)]) == 0
    assert (Path(tiny_run) / "report" / "index.html").is_file()
    assert "report/index.html" in capsys.readouterr().out
    assert main(["report", str(Path(tiny_run) / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error: run directory")


# The eng+deu shape of issue 31: pooled macro-F1 0.32 -> 0.39, the monitored mean over
# languages 0.21 -> 0.28.
TWO_LANGUAGES = [
    {"epoch": 1, "loss": 0.30, "val_loss": 0.31, "macro_f1": 0.25, "val_macro_f1": 0.32,
     "val_language_mean_f1": 0.21},
    {"epoch": 2, "loss": 0.25, "val_loss": 0.29, "macro_f1": 0.35, "val_macro_f1": 0.39,
     "val_language_mean_f1": 0.28},
]


def test_curves_and_table_show_the_monitored_language_mean(tmp_path):
    """Several languages: macro_f1.png draws the mean over languages (monitored) first and
    the pooled number beside it; the per-epoch table shows both, the kept epoch marked."""
    from kemo.evaluation.run_page import history_table
    from kemo.evaluation.plots import f1_lines, plot_curves

    lines = f1_lines(TWO_LANGUAGES)
    assert [k for k, _, _ in lines] == ["val_language_mean_f1", "macro_f1", "val_macro_f1"]
    assert "monitored" in lines[0][1] and "pooled" in lines[2][1]
    figs = plot_curves(TWO_LANGUAGES, [], tmp_path, best_epoch=2)
    assert "monitored: language mean" in figs["macro_f1.png"]
    assert (tmp_path / "macro_f1.png").stat().st_size > 10_000
    table = history_table(TWO_LANGUAGES, best_epoch=2)
    assert "the run monitored macro-F1, validation, mean over languages" in table
    heads = re.findall(r"<th>([^<]+)</th>", table)
    assert heads.index("macro-F1, validation, mean over languages (monitored)") \
        < heads.index("macro-F1, validation, all rows pooled")
    assert re.search(r'<tr class="main"><td>2</td>.*<td>0\.2800</td>.*<td>0\.3900</td>', table)
    assert "<td>0.2100</td>" in table

    one = [{k: v for k, v in e.items() if k != "val_language_mean_f1"} for e in TWO_LANGUAGES]
    assert [k for k, _, _ in f1_lines(one)] == ["macro_f1", "val_macro_f1"]
    assert "the run monitored macro-F1, validation</caption>" in history_table(one)


def test_small_validation_split_is_named_with_what_to_raise(data_dir):
    """Issue 31: `--set data.max_train_examples_per_language=100` validates on 10 rows:
    the note says so, names the labels with few positives and the keys to raise."""
    from kemo.config import load_config
    from kemo.data.splits import load_data, small_validation_note, validation_note

    cfg = load_config(Path(__file__).parents[1] / "configs" / "tiny.toml",
                      ["data.max_train_examples_per_language=100", "data.val_fraction=0.1"])
    val = load_data(cfg, data_dir).val
    assert len(val) == 10
    note = validation_note(val, cfg.data)
    assert note.startswith("warning: the validation split is small to tune thresholds on: "
                           "10 rows (fewer than 100); fewer than 5 positive rows for ")
    positives = (val.labels * val.mask).sum(0)
    for name, n in zip(val.label_names, positives):
        assert (f"{name} ({int(n)})" in note) == (n < 5)
    assert ("Raise data.val_fraction (now 0.1) or data.max_train_examples_per_language "
            "(now 100)") in note

    assert small_validation_note(2000, {"joy": 300, "fear": 40}, cfg.data) is None
    few = small_validation_note(2000, {"joy": 300, "fear": 3}, cfg.data)
    assert "2000 rows; fewer than 5 positive rows for fear (3)" in few and "joy" not in few
    cfg.data.validation = "dev"
    assert small_validation_note(20, {}, cfg.data).endswith(
        'Use a larger dev file or validate on train (data.validation = "train"), or set '
        "thresholds.tune = false to decide at 0.5")


def test_report_page_and_json_carry_the_small_validation_note(tiny_run, tmp_path):
    """The tiny run validates on 90 rows: report.json's meta.notes holds the warning the
    training printed, and the page shows it; a run written before notes gets it worked
    out from its report.json."""
    from kemo.evaluation.run_page import run_notes
    from kemo.prediction.trained_run import read_run_state
    from kemo.run.report_file import Report

    report = json.loads((Path(tiny_run) / "report.json").read_text())
    assert report["meta"]["val_rows"] == 90
    [note] = report["meta"]["notes"]
    assert note.startswith("warning: the validation split is small to tune thresholds on: "
                           "90 rows (fewer than 100)")
    page = make_run_page(tiny_run, out_dir=tmp_path / "report").path.read_text()
    assert f'<p class="note warn">{note}</p>' in page.replace("&#x27;", "'")

    older = {**report, "meta": {k: v for k, v in report["meta"].items() if k != "notes"}}
    assert run_notes(Report.from_dict(older), read_run_state(tiny_run).config) == [note]
