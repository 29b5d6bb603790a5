"""Runs written before the run-directory redesign (issue 21) still read and resume.

The code of main before the redesign (`BEFORE`, whose `report.json` has no
`format_version`: format 1) is taken from git (`git archive`) and trains the tiny config
in a child process. Today's code then
- reads its finished run: predicts dev to the probabilities it wrote, lists it, and
  its report.json reads as format 1;
- resumes its interrupted run (killed after its first checkpoint) to the same history,
  thresholds and dev macro-F1 as today's uninterrupted run: training is unchanged.
Skipped, saying why, where the checkout has no git history (CI clones have it).
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, stop_after_first_checkpoint

BEFORE = "149a5b4"  # main on 2026-12-03 before the redesign
SETS = ["train.epochs=2", "data.max_train_examples=400", "model.sequence_length=48",
        "data.length_buckets=[24]", "train.early_stopping_patience=3"]


@pytest.fixture(scope="module")
def old_code(tmp_path_factory):
    """kemo as it was at `BEFORE`, unpacked from git."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("no git history in this checkout: the code of older runs is not at hand")
    known = subprocess.run(["git", "cat-file", "-e", f"{BEFORE}^{{commit}}"], cwd=ROOT,
                           capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"commit {BEFORE} is not in this clone's history (a shallow clone?)")
    out = tmp_path_factory.mktemp("before")
    archive = subprocess.run(["git", "archive", BEFORE, "kemo"], cwd=ROOT, check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    assert not (out / "kemo" / "run" / "finish.py").exists()  # really the older code
    where = subprocess.run([sys.executable, "-P", "-c",
                            "import kemo.training as t; print(t.__file__)"],
                           env={**os.environ, "PYTHONPATH": str(out)}, capture_output=True,
                           text=True, cwd=ROOT)
    assert where.stdout.strip() == str(out / "kemo" / "training.py"), where.stderr[-1000:]
    return out


def old_cmd(run_dir, *extra):
    sets = [a for o in SETS for a in ("--set", o)]
    # -P: the working directory (today's checkout) is not put on sys.path
    return [sys.executable, "-P", "-m", "kemo.cli", "train", "--backend", "jax", "--config",
            str(ROOT / "configs" / "tiny.toml"), "--run-dir", str(run_dir), "--quiet",
            *sets, *extra]


def old_env(old_code, data_dir):
    return {**os.environ, "KEMO_DATA_DIR": str(data_dir), "PYTHONPATH": str(old_code)}


@pytest.fixture(scope="module")
def old_run(old_code, data_dir, tmp_path_factory):
    run = tmp_path_factory.mktemp("old") / "finished"
    done = subprocess.run(old_cmd(run), cwd=ROOT, env=old_env(old_code, data_dir),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return run


def test_a_finished_older_run_reads_predicts_and_lists(old_run, data_dir, tmp_path, capsys):
    from kemo.cli import main
    from kemo.errors import InputError
    from kemo.prediction.predictor import load_predictor
    from kemo.run.report_file import Report, report_format

    report = json.loads((old_run / "report.json").read_text())
    assert "format_version" not in report and report_format(report) == 1
    assert Report.read(old_run).format_version == 1  # every value checked, as for today's
    run = load_predictor(old_run)
    assert run.label_names == ["anger", "fear", "joy", "sadness", "surprise"]
    out = tmp_path / "dev"
    assert main(["predict", str(old_run), "--split", "dev", "--out", str(out),
                 "--data-dir", str(data_dir)]) == 0
    then = pd.read_csv(old_run / "predictions_dev.csv", dtype={"id": str}).set_index("id")
    now = pd.read_csv(out / "probs_eng.csv", dtype={"id": str}).set_index("id")
    np.testing.assert_allclose(then.loc[now.index, now.columns].to_numpy(), now.to_numpy(),
                               atol=2e-6)
    capsys.readouterr()
    assert main(["runs", str(old_run.parent), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in listed] == ["finished"] and listed[0]["finished"]
    # A format this kemo does not know (a newer kemo's) is refused, naming the field.
    newer = tmp_path / "newer"
    shutil.copytree(old_run, newer)
    (newer / "report.json").write_text(json.dumps({**report, "format_version": 99}))
    with pytest.raises(InputError, match=r"report.json, field 'format_version': 99 is not"):
        Report.read(newer)


def test_an_interrupted_older_run_resumes_to_todays_result(old_code, data_dir, tmp_path):
    from kemo.config import load_config
    from kemo.training import train

    killed = tmp_path / "killed"
    code, epoch = stop_after_first_checkpoint(old_cmd(killed), killed, signal.SIGKILL,
                                              old_env(old_code, data_dir))
    assert code == -signal.SIGKILL and epoch == 1 and not (killed / "report.json").exists()
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir)}
    resumed = subprocess.run([sys.executable, "-m", "kemo.cli", "train", "--resume",
                              str(killed), "--quiet"], cwd=ROOT, env=env,
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming {killed} after epoch 1" in resumed.stdout

    cfg = load_config(ROOT / "configs" / "tiny.toml", SETS)
    today = train(cfg, data_dir=data_dir, run_dir=tmp_path / "today", verbose=0)
    then = json.loads((killed / "history.json").read_text())
    assert [e["epoch"] for e in then] == [e["epoch"] for e in today["history"]] == [1, 2]
    for a, b in zip(then, today["history"]):
        for key in a:
            assert abs(a[key] - b[key]) <= 1e-6, (a["epoch"], key, a[key], b[key])
    np.testing.assert_allclose(
        json.loads((killed / "thresholds.json").read_text())["thresholds"],
        json.loads((tmp_path / "today" / "thresholds.json").read_text())["thresholds"],
        atol=1e-6)
    finished = json.loads((killed / "report.json").read_text())
    assert finished["format_version"] == 2  # finished by today's code
    assert finished["meta"]["resumed_after_epoch"] == 1
    assert abs(finished["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"]
               - today["report"]["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"]) <= 1e-6
