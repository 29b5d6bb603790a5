"""Run state read back is validated: a damaged or hand-edited run file stops the command.

Each case copies the tiny run, damages one file (thresholds, label names, config,
report, model, checkpoint, export metadata) and runs the real CLI on it: exit 2,
exactly one `error:` line naming the file and the field, no traceback, and the run's
tree unchanged (paths, sizes, mtimes, contents). Most cases run in-process through
`kemo.cli.main`; a few also as subprocesses. Then: `export --out` never deletes what
kemo did not write, and `--resume` on a damaged checkpoint names the file and writes
nothing.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, snapshot
from kemo.cli import main

# ------------------------------------------------------------------------ helpers


def check_refused(rc, err, needles, before, root):
    assert rc == 2, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert snapshot(root) == before, "the command changed files on disk"
    return errors[0]


def edit_json(fn):
    def mutate(path: Path):
        d = json.loads(path.read_text())
        fn(d)
        path.write_text(json.dumps(d, indent=1))
    return mutate


def setitem(*keys_value):
    *keys, value = keys_value

    def fn(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return edit_json(fn)


def truncate(n):
    return lambda path: path.write_bytes(path.read_bytes()[:n])


def write(text):
    return lambda path: path.write_text(text)


def flip_byte(at: float):
    def mutate(path: Path):
        data = bytearray(path.read_bytes())
        data[int(len(data) * at)] ^= 0xFF
        path.write_bytes(bytes(data))
    return mutate


T, D, C, R = "thresholds.json", "label_distribution.json", "config.toml", "report.json"
NAN = setitem("thresholds", 1, float("nan"))  # json.dumps writes NaN
# name -> (file, mutation, substrings of the error line)
CASES = {
    "threshold_nan": (T, NAN, [T, "field 'thresholds'[1]", "nan", "[0.0, 1.0]"]),
    "threshold_2": (T, setitem("thresholds", 0, 2.0), [T, "field 'thresholds'[0]", "2.0"]),
    "threshold_negative": (T, setitem("thresholds", 4, -0.1), [T, "'thresholds'[4]", "-0.1"]),
    "threshold_infinite": (T, setitem("thresholds", 2, float("inf")), [T, "'thresholds'[2]"]),
    "threshold_string": (T, setitem("thresholds", 0, "0.5"), [T, "'thresholds'[0]",
                                                             "expected a number"]),
    "threshold_bool": (T, setitem("thresholds", 0, True), [T, "'thresholds'[0]", "boolean"]),
    "thresholds_not_list": (T, setitem("thresholds", 0.5), [T, "field 'thresholds'",
                                                            "expected a JSON array"]),
    "thresholds_short": (T, edit_json(lambda d: d["thresholds"].pop()),
                         [T, "field 'thresholds'", "4 values, expected 5"]),
    "thresholds_missing": (T, edit_json(lambda d: d.pop("thresholds")),
                           [T, "field 'thresholds'", "missing"]),
    "names_swapped": (T, edit_json(lambda d: d["label_names"].__setitem__(
        slice(0, 2), d["label_names"][1::-1])), [T, "field 'label_names'", "order", D]),
    "names_missing_label": (T, edit_json(lambda d: (d["label_names"].remove("joy"),
                                                    d["thresholds"].pop())),
                            [T, "field 'label_names'", "missing label 'joy'"]),
    "names_extra_label": (T, edit_json(lambda d: (d["label_names"].insert(1, "disgust"),
                                                  d["thresholds"].append(0.5))),
                          [T, "field 'label_names'", "unexpected label 'disgust'"]),
    "names_unknown_label": (T, setitem("label_names", 0, "happiness"),
                            [T, "'label_names'[0]", "unknown label 'happiness'"]),
    "names_duplicate": (T, setitem("label_names", 1, "anger"), [T, "'label_names'", "twice"]),
    "names_not_strings": (T, setitem("label_names", 2, 3), [T, "'label_names'[2]"]),
    "thresholds_truncated": (T, truncate(60), [T, "not valid JSON", "line"]),
    "thresholds_not_json": (T, write("thresholds: 0.5\n"), [T, "not valid JSON"]),
    "thresholds_empty": (T, write(""), [T, "empty file"]),
    "thresholds_array": (T, write("[0.5, 0.5]"), [T, "expected a JSON object"]),
    "thresholds_binary": (T, lambda p: p.write_bytes(b"\xff\xfe\x00{"), [T, "UTF-8"]),
    "val_f1_nan": (T, setitem("val_f1", 0, float("nan")), [T, "field 'val_f1'[0]"]),
    "distribution_swapped": (D, edit_json(lambda d: d["labels"].reverse()),
                             [D, "field 'labels'", "order"]),
    "distribution_renamed": (D, setitem("labels", 0, "disgust"),
                             [T, "field 'label_names'", "missing label 'disgust'", D]),
    "distribution_short": (D, edit_json(lambda d: d["labels"].pop()),
                           [D, "field 'before'", "5 values, expected 4"]),
    "distribution_rate_2": (D, setitem("after", 0, 2.0), [D, "field 'after'[0]"]),
    "distribution_truncated": (D, truncate(30), [D, "not valid JSON"]),
    # cut inside a value: not TOML; cut at a line's end: valid TOML, refused by its end line
    "config_truncated": (C, lambda p: p.write_text(p.read_text().split('["eng')[0] + '["en'),
                         [C, "not a valid TOML file"]),
    "config_cut_at_line": (C, lambda p: p.write_text("".join(
        p.read_text().splitlines(keepends=True)[:12])), [C, "truncated run config"]),
    "config_bad_type": (C, lambda p: p.write_text(p.read_text().replace(
        "epochs = 2", 'epochs = "two"')), [C, "'train.epochs'"]),
    "config_binary": (C, lambda p: p.write_bytes(b"\x00\xff" * 10), [C]),
    "report_truncated": (R, truncate(400), [R, "not valid JSON"]),
    "report_meta_thresholds": (R, setitem("meta", "thresholds", [0.5]),
                               [R, "field 'meta.thresholds'", "1 values, expected 5"]),
    "report_foreign_label": (R, setitem("validation", "tuned_thresholds", "overall",
                                        "per_label", "disgust",
                                        {"precision": 1, "recall": 1, "f1": 1, "support": 1}),
                             [R, "'validation.tuned_thresholds.overall.per_label'", "disgust"]),
    "report_nan_f1": (R, setitem("validation", "threshold_0.5", "overall", "macro", "f1",
                                 float("nan")),
                      [R, "'validation.threshold_0.5.overall.macro.f1'"]),
    "report_missing_validation": (R, edit_json(lambda d: d.pop("validation")),
                                  [R, "field 'validation'", "missing"]),
}
# A damaged model is found by every command that loads it (report reads no model).
MODEL_CASES = {
    "model_truncated": ("model.keras", truncate(5000), ["model.keras", "not a readable"]),
    "model_byte_flip": ("model.keras", flip_byte(0.5), ["model.keras"]),
    "model_empty": ("model.keras", write(""), ["model.keras"]),
}
SUBPROCESS_CASES = ("threshold_nan", "names_swapped", "thresholds_truncated", "model_truncated")


@pytest.fixture
def run(tiny_run, tmp_path):
    """A copy of the tiny run, alone in its own folder (the snapshot's root)."""
    dst = tmp_path / "root" / "run"
    shutil.copytree(tiny_run, dst)
    return dst


def _commands(run, data_dir, with_report=True):
    """Each command that reads the run, writing into the run folder when it succeeds."""
    cmds = {
        "predict": ["predict", str(run), "--split", "dev", "--languages", "eng",
                    "--data-dir", str(data_dir), "--overwrite"],
        "explain": ["explain", str(run), "--text", "I am so happy", "--num-samples", "10"],
        "export": ["export", str(run), "--no-benchmark"],
    }
    if with_report:
        cmds["report"] = ["report", str(run), "--data-dir", str(data_dir)]
    return cmds


@pytest.mark.parametrize("case", list(CASES) + list(MODEL_CASES))
def test_damaged_run_file_is_refused_by_every_command(case, run, data_dir, capsys):
    name, mutate, needles = {**CASES, **MODEL_CASES}[case]
    mutate(run / name)
    before = snapshot(run.parent)
    for command, argv in _commands(run, data_dir, case in CASES).items():
        rc = main(argv)
        err = capsys.readouterr().err
        line = check_refused(rc, err, needles, before, run.parent)
        assert str(run / name) in line, (command, line)


@pytest.mark.parametrize("case", SUBPROCESS_CASES)
def test_damaged_run_file_subprocess(case, run, data_dir):
    name, mutate, needles = {**CASES, **MODEL_CASES}[case]
    mutate(run / name)
    before = snapshot(run.parent)
    proc = subprocess.run([sys.executable, "-m", "kemo.cli", "predict", str(run), "--split",
                           "dev", "--languages", "eng", "--data-dir", str(data_dir),
                           "--overwrite"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    check_refused(proc.returncode, proc.stderr, needles + [str(run / name)], before, run.parent)
    assert "Traceback" not in proc.stdout


def test_intact_copy_still_predicts(run, data_dir, capsys):
    """The checks reject nothing kemo wrote itself."""
    assert main(_commands(run, data_dir)["predict"]) == 0
    assert (run / "predictions" / "dev" / "pred_eng.csv").is_file()


# ------------------------------------------------------------ export --out safety

def _marked_export(out: Path, **info):
    """A folder as `kemo export` marks it (its real export.json has more fields)."""
    from kemo.serving.export_dir import mark

    out.mkdir(parents=True)
    (out / "saved_model").mkdir()
    (out / "saved_model" / "saved_model.pb").write_bytes(b"old")
    (out / "model.keras").write_bytes(b"old")
    (out / "export.json").write_text(json.dumps({
        "format_version": 1, "label_names": ["anger", "fear", "joy", "sadness", "surprise"],
        "thresholds": [0.5] * 5, "keras_model": {"path": "model.keras"},
        "saved_model": {"path": "saved_model", "signature": "serving_default"}, **info}))
    mark(out)
    return out


EXPORT_CASES = {
    # a user's folder that happens to hold an export.json
    "foreign_with_export_json": (
        lambda out: (out.mkdir(), (out / "notes.txt").write_text("keep me"),
                     (out / "export.json").write_text('{"format_version": 1}')),
        ["not an earlier kemo export", "no .kemo-export marker"]),
    "kemo_export_plus_user_file": (
        lambda out: (_marked_export(out), (out / "notes.txt").write_text("keep me")),
        ["not an earlier kemo export", "'notes.txt' was not written by kemo"]),
    "user_file_inside_saved_model": (
        lambda out: (_marked_export(out), (out / "saved_model" / "mine.txt").write_text("x")),
        ["'saved_model/mine.txt' was not written by kemo"]),
    "forged_marker": (
        lambda out: (out.mkdir(), (out / ".kemo-export").write_text(
            '{"kemo": "something else", "files": ["notes.txt"]}'),
            (out / "notes.txt").write_text("keep me")),
        [".kemo-export, field 'kemo'", "not kemo's export marker"]),
    "marker_truncated": (
        lambda out: (_marked_export(out), truncate(20)(out / ".kemo-export")),
        [".kemo-export: not valid JSON"]),
    "export_json_nan_threshold": (
        lambda out: _marked_export(out, thresholds=[0.5, float("nan"), 0.5, 0.5, 0.5]),
        ["export.json, field 'thresholds'[1]"]),
    "export_json_swapped_names": (
        lambda out: _marked_export(out, label_names=["fear", "anger", "joy", "sadness",
                                                     "surprise"]),
        ["export.json, field 'label_names'", "order"]),
    "export_json_truncated": (
        lambda out: (_marked_export(out), truncate(40)(out / "export.json")),
        ["export.json: not valid JSON"]),
    "export_json_version": (
        lambda out: _marked_export(out, format_version=7),
        ["export.json, field 'format_version'", "7"]),
    "out_is_a_file": (lambda out: out.write_text("keep me"), ["not a directory"]),
}


@pytest.mark.parametrize("case", EXPORT_CASES)
def test_export_refuses_folders_kemo_did_not_mark(case, tiny_run, tmp_path, capsys):
    make, needles = EXPORT_CASES[case]
    out = tmp_path / "root" / "out"
    out.parent.mkdir()
    make(out)
    before = snapshot(tmp_path / "root")
    rc = main(["export", str(tiny_run), "--out", str(out), "--no-benchmark"])
    check_refused(rc, capsys.readouterr().err, needles + [str(out)], before, tmp_path / "root")


def test_export_replaces_its_own_export_and_only_that(tiny_run, tmp_path, capsys):
    from kemo.serving.export import read_export_info

    out = _marked_export(tmp_path / "out")
    (tmp_path / "beside.txt").write_text("keep me")
    assert main(["export", str(tiny_run), "--out", str(out), "--no-benchmark"]) == 0
    assert "exported" in capsys.readouterr().out
    info = read_export_info(out)
    assert info["label_names"] == json.loads((tiny_run / T).read_text())["label_names"]
    assert (out / "saved_model" / "saved_model.pb").read_bytes() != b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["beside.txt", "out"]  # no debris
    marker = json.loads((out / ".kemo-export").read_text())
    assert sorted(marker["files"]) == sorted(p.relative_to(out).as_posix()
                                             for p in out.rglob("*"))


def test_export_help_says_what_it_replaces(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ".kemo-export" in text and "refused" in text and "nothing in it is deleted" in text


# ------------------------------------------------------------ resume on damage

def _npz_replace(name, fn):
    """Rewrite array `name` of an npz with fn(array)."""
    def mutate(path: Path):
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        arrays[name] = fn(arrays[name])
        with open(path, "wb") as f:
            np.savez(f, **arrays)
    return mutate


def _drop_last_array(path: Path):
    with np.load(path) as data:
        arrays = {k: data[k] for k in sorted(data.files)[:-1]}
    with open(path, "wb") as f:
        np.savez(f, **arrays)


CK = "checkpoints/epoch-0002"
# name -> (file relative to the run, mutation, substrings of the error line)
RESUME_CASES = {
    "model_npz_truncated": (f"{CK}/model.npz", truncate(2000), ["model.npz", "cannot read"]),
    "model_npz_byte_flip": (f"{CK}/model.npz", flip_byte(0.3), ["model.npz"]),
    "model_npz_empty": (f"{CK}/model.npz", write(""), ["model.npz"]),
    "model_npz_missing": (f"{CK}/model.npz", Path.unlink, ["model.npz", "missing"]),
    "model_npz_shape": (f"{CK}/model.npz", _npz_replace("v00003", lambda a: a.ravel()[:-1]),
                        ["model.npz", "has shape"]),
    "model_npz_count": (f"{CK}/model.npz", _drop_last_array, ["model.npz", "variables"]),
    "model_npz_nan": (f"{CK}/model.npz", _npz_replace("v00003", lambda a: a * np.nan),
                      ["model.npz", "NaN"]),
    "optimizer_npz_truncated": (f"{CK}/optimizer.npz", truncate(1000), ["optimizer.npz"]),
    "state_not_json": (f"{CK}/state.json", write("{epoch: 2"), ["state.json", "not valid JSON"]),
    "state_epoch_string": (f"{CK}/state.json", setitem("epoch", "2"),
                           ["state.json, field 'epoch'", "expected an integer"]),
    "state_epoch_other": (f"{CK}/state.json", setitem("epoch", 1),
                          ["state.json, field 'epoch'", "epoch-0002"]),
    "state_wait_negative": (f"{CK}/state.json", setitem("early_stopping", "wait", -1),
                            ["state.json, field 'early_stopping.wait'"]),
    "state_missing": (f"{CK}/state.json", Path.unlink, ["state.json", "missing"]),
    "latest_nowhere": ("checkpoints/LATEST", write("epoch-0009"), ["LATEST", "epoch-0009"]),
    "latest_escapes": ("checkpoints/LATEST", write("../../.."), ["LATEST"]),
    "history_truncated": ("history.json", truncate(50), ["history.json", "not valid JSON"]),
    "history_short": ("history.json", edit_json(lambda d: d.pop()),
                      ["history.json", "1 epochs", "epoch 2"]),
    "distribution_swapped": (D, edit_json(lambda d: d["labels"].reverse()), [D, "'labels'"]),
    "history_csv_binary": ("history.csv", lambda p: p.write_bytes(b"\xff\xfe\x00"),
                           ["history.csv", "cannot read"]),
}


@pytest.fixture
def interrupted(run):
    """The tiny run as if killed after its last checkpoint, before the final writes."""
    for name in ("report.json", "thresholds.json", "model.keras", "predictions_dev.csv"):
        (run / name).unlink()
    shutil.rmtree(run / "preprocessor")
    assert (run / "checkpoints" / "LATEST").read_text().strip() == "epoch-0002"
    return run


@pytest.mark.parametrize("case", RESUME_CASES)
def test_resume_on_damaged_checkpoint_names_the_file(case, interrupted, data_dir, capsys,
                                                    monkeypatch):
    monkeypatch.setenv("KEMO_DATA_DIR", str(data_dir))
    name, mutate, needles = RESUME_CASES[case]
    mutate(interrupted / name)
    before = snapshot(interrupted.parent)
    rc = main(["train", "--resume", str(interrupted), "--quiet"])
    check_refused(rc, capsys.readouterr().err, needles, before, interrupted.parent)


def test_resume_on_damaged_checkpoint_subprocess(interrupted, data_dir):
    truncate(2000)(interrupted / CK / "model.npz")
    before = snapshot(interrupted.parent)
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir)}
    proc = subprocess.run([sys.executable, "-m", "kemo.cli", "train", "--resume",
                           str(interrupted), "--quiet"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    check_refused(proc.returncode, proc.stderr, [str(interrupted / CK / "model.npz")],
                  before, interrupted.parent)


def test_resume_of_intact_checkpoint_finishes(interrupted, data_dir, monkeypatch, capsys):
    """The checks accept the checkpoint kemo wrote: the run finishes from it."""
    monkeypatch.setenv("KEMO_DATA_DIR", str(data_dir))
    distribution = (interrupted / D).read_bytes()
    assert main(["train", "--resume", str(interrupted), "--quiet"]) == 0
    assert f"resuming {interrupted} after epoch 2" in capsys.readouterr().out
    assert (interrupted / D).read_bytes() == distribution  # not rewritten
    for name in ("report.json", "thresholds.json", "model.keras"):
        assert (interrupted / name).is_file()
    assert zipfile.is_zipfile(interrupted / "model.keras")
