"""Track C (issue 35): `kemo crosslingual`, language folds trained without their
languages and predicted zero-shot.

The fold assignment (seeded, balanced, leave-one-out), the refusals of bad input (one
`error:` line, exit 2, nothing written), and a tiny protocol on three languages cut from
the real Track A files: stopped after fold 1, resumed without retraining it, its
zero-shot table checked against sklearn's F1 and its Track C zip against the fold files.
"""

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import assert_refused, first_rows, run_cli, snapshot, write_tiny_config
from kemo.crosslingual import language_folds, plan_folds

LANGS = ("eng", "deu", "hau")


def _tiny_track_a(root: Path, data_dir: Path, sizes=None) -> Path:
    """A Track A folder of the real files' first rows (train 120, dev 40, test 12)."""
    sizes = sizes or {"train": 120, "dev": 40, "test": 12}
    return first_rows(data_dir, root, {split: dict.fromkeys(LANGS, n)
                                       for split, n in sizes.items()})


def _config(tmp_path: Path, languages=LANGS) -> Path:
    return write_tiny_config(tmp_path / "tiny_c.toml", {
        "languages": list(languages), "val_fraction": 0.25, "length_buckets": [32]})


def test_folds_are_balanced_seeded_and_cover_every_language_once():
    rows = {"a": 100, "b": 90, "c": 50, "d": 40, "e": 10, "f": 5, "g": 3}
    folds = language_folds(rows, 3, seed=0)
    assert sorted(x for f in folds for x in f) == sorted(rows) and len(folds) == 3
    sums = [sum(rows[x] for x in f) for f in folds]
    assert max(sums) - min(sums) <= 10, sums  # 99 / 100 / 99 is reachable
    assert language_folds(rows, 3, seed=0) == folds
    equal = {x: 10 for x in "abcdef"}  # every split of equal rows is as balanced: the seed picks
    picks = {tuple(map(tuple, language_folds(equal, 2, seed=s))) for s in range(8)}
    assert len(picks) > 1 and all(len(f) == 3 for p in picks for f in p)
    loo = language_folds(rows, len(rows), seed=3)
    assert sorted(map(tuple, loo)) == sorted((x,) for x in rows)
    plan = plan_folds(rows, folds=3, seed=0)
    for fold in plan:
        assert not set(fold.train) & set(fold.targets)
        assert set(fold.train) | set(fold.targets) == set(rows)
    english = plan_folds({"eng": 9, "deu": 8, "hau": 7}, train_languages=["eng"])
    assert [(f.name, f.train, f.targets) for f in english] == [
        ("from-eng", ("eng",), ("deu", "hau"))]


def test_a_language_without_training_rows_never_trains_alone():
    from kemo.errors import InputError

    with pytest.raises(InputError, match="no training rows"):
        plan_folds({"eng": 9, "ron": 0}, train_languages=["ron"])


@pytest.mark.parametrize("argv, needles", [
    (["--folds", "4"], ["--folds 4", "3 languages"]),
    (["--train-languages", "xx"], ["--train-languages", "'xx'"]),
    (["--train-languages", "swa"], ["--train-languages", "swa", "not among"]),
    (["--train-languages", "eng", "deu", "hau"], ["no fold has a target"]),
    (["--folds", "2", "--resume"], ["no crosslingual.json", "--resume"]),
    (["--folds", "2", "--reference", "{tmp}/nowhere"], ["nowhere"]),
    (["--folds", "2", "--set", 'data.label_kind="intensity"'], ["label_kind"]),
])
def test_bad_input_is_refused_and_nothing_written(tmp_path, data_dir, argv, needles):
    data = _tiny_track_a(tmp_path / "data", data_dir, {"train": 20, "dev": 5, "test": 3})
    config = _config(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    before = snapshot(tmp_path)
    rc, out, err = run_cli(["crosslingual", "--config", config, "--data-dir", data,
                            "--out", tmp_path / "c", *argv])
    assert_refused(rc, out, err, needles, before, snapshot(tmp_path))


def test_a_target_without_its_test_file_and_a_busy_out_are_refused(tmp_path, data_dir):
    data = _tiny_track_a(tmp_path / "data", data_dir, {"train": 20, "dev": 5, "test": 3})
    (data / "test" / "hau.csv").unlink()
    config = _config(tmp_path)
    before = snapshot(tmp_path)
    rc, out, err = run_cli(["crosslingual", "--config", config, "--data-dir", data,
                            "--out", tmp_path / "c", "--folds", "3"])
    assert_refused(rc, out, err, [str(data / "test" / "hau.csv"), "hau"], before,
                   snapshot(tmp_path))
    _tiny_track_a(tmp_path / "data", data_dir, {"test": 3})
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep")
    before = snapshot(tmp_path)
    rc, out, err = run_cli(["crosslingual", "--config", config, "--data-dir", data,
                            "--out", tmp_path / "busy", "--train-languages", "eng"])
    assert_refused(rc, out, err, ["busy", "not empty"], before, snapshot(tmp_path))
    with pytest.raises(SystemExit) as stop:  # argparse refuses it, exit 2 too
        run_cli(["crosslingual", "--config", config, "--out", tmp_path / "c", "--folds", "1"])
    assert stop.value.code == 2 and not (tmp_path / "c").exists()


def _macro_f1(pred: Path, gold: Path) -> float:
    """The official macro-F1 of one language, by sklearn (independent of kemo's scorer)."""
    import pandas as pd
    from sklearn.metrics import f1_score

    p, g = pd.read_csv(pred, dtype={"id": str}), pd.read_csv(gold, dtype={"id": str})
    g = g.set_index("id").loc[p["id"]]
    cols = [c for c in p.columns if c != "id"]
    return f1_score(g[[c.lower() for c in cols]].to_numpy(), p[cols].to_numpy(),
                    average="macro", zero_division=0)


def test_tiny_protocol_stops_after_fold_1_and_resumes_without_retraining_it(
        tmp_path, data_dir, monkeypatch):
    import kemo.training.trainer as trainer

    data = _tiny_track_a(tmp_path / "data", data_dir)
    config, out = _config(tmp_path), tmp_path / "c"
    argv = ["crosslingual", "--config", config, "--data-dir", data, "--out", out,
            "--folds", "2", "--quiet"]
    real = trainer.train_or_keep

    def stop_at_fold_2(cfg, run_dir, root, verbose):
        if run_dir.name == "fold-2":
            raise KeyboardInterrupt  # as Ctrl-C between two folds
        return real(cfg, run_dir, root, verbose)

    monkeypatch.setattr(trainer, "train_or_keep", stop_at_fold_2)
    rc, _, err = run_cli(argv)
    assert rc == 130, err[-3000:]
    monkeypatch.setattr(trainer, "train_or_keep", real)
    plan = json.loads((out / "crosslingual.json").read_text())
    folds = {f["name"]: f for f in plan["folds"]}
    assert (out / "fold-1" / "report.json").is_file() and not (out / "fold-2").exists()
    assert not (out / "zero_shot.csv").exists()
    model = out / "fold-1" / "model.keras"
    stamp = model.stat().st_mtime_ns
    before = snapshot(tmp_path)
    rc, o, err = run_cli(argv)  # without --resume: refused, nothing touched
    assert_refused(rc, o, err, ["--resume"], before, snapshot(tmp_path))
    rc, o, err = run_cli([*argv, "--resume", "--reference", out / "fold-1"])
    assert rc == 0, err[-3000:]
    assert "finished before: kept" in o + err and model.stat().st_mtime_ns == stamp
    for name, fold in folds.items():  # each run trained on the languages outside its fold
        trained = json.loads((out / name / "report.json").read_text())
        cfg = (out / name / "config.toml").read_text()
        assert all(f'"{t}"' not in cfg.split("languages")[1].split("\n")[0]
                   for t in fold["targets"]), cfg
        assert set(fold["train"]) | set(fold["targets"]) == set(LANGS)
        assert trained["dev"]
    table = list(csv.DictReader(open(out / "zero_shot.csv", encoding="utf-8")))
    assert [r["language"] for r in table[:-1]] == [t for f in plan["folds"] for t in f["targets"]]
    assert table[-1]["language"] == "mean"
    ref = json.loads((out / "fold-1" / "report.json").read_text())
    setting = ref["meta"].get("decides_with", "tuned_thresholds")
    for row in table[:-1]:
        pred = out / row["fold"] / "predictions" / "zero_shot_dev" / f"pred_{row['language']}.csv"
        want = _macro_f1(pred, data / "dev" / f"{row['language']}.csv")
        assert float(row["zero_shot_dev_f1"]) == pytest.approx(want, abs=1e-4)
        eng_only = folds[row["fold"]]["train"] == ["eng"]  # eng has no disgust column
        assert row["untrained_labels"] == ("disgust" if eng_only else ""), row
        in_lang = ref["dev"][setting]["per_language"].get(row["language"])
        if in_lang is None:
            assert row["in_language_dev_f1"] == ""
        else:
            assert float(row["in_language_dev_f1"]) == pytest.approx(in_lang["macro"]["f1"],
                                                                       abs=1e-4)
    zero = [float(r["zero_shot_dev_f1"]) for r in table[:-1]]
    assert float(table[-1]["zero_shot_dev_f1"]) == pytest.approx(np.mean(zero), abs=1e-4)
    with zipfile.ZipFile(out / "submission.zip") as zf:
        assert sorted(zf.namelist()) == sorted(f"track_c/pred_{x}.csv" for x in LANGS)
        for row in table[:-1]:
            lang = row["language"]
            test = out / row["fold"] / "predictions" / "zero_shot_test" / f"pred_{lang}.csv"
            assert zf.read(f"track_c/pred_{lang}.csv") == test.read_bytes()
            assert len(test.read_text().splitlines()) == 13
    assert "zero-shot dev F1" in (out / "zero_shot.md").read_text()
    assert "zero-shot dev F1" in o and f"wrote {out / 'submission.zip'}" in o


def test_plan_only_prints_the_folds_and_writes_nothing(tmp_path, data_dir):
    data = _tiny_track_a(tmp_path / "data", data_dir, {"train": 20, "dev": 5, "test": 3})
    config = _config(tmp_path)
    before = snapshot(tmp_path)
    rc, out, err = run_cli(["crosslingual", "--config", config, "--data-dir", data,
                            "--out", tmp_path / "c", "--folds", "3", "--plan-only"])
    assert rc == 0, err
    assert snapshot(tmp_path) == before
    lines = out.splitlines()
    assert len(lines) == 3 and all("20 training rows held out" in x for x in lines), out
    assert {x.split()[2] for x in lines} == set(LANGS)  # leave-one-out: one target each
