"""A finished run is lean: `model.keras` holds no optimizer state and `checkpoints/` is
deleted once `report.json` is written (`train --keep-checkpoints` keeps it); the lean
model reloads and predicts what the trained model predicted.
"""

import json
import shutil
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY_OVERRIDES, run_cli

SETS = [x for s in TINY_OVERRIDES for x in ("--set", s)]


def dev_probs(path: Path) -> np.ndarray:
    df = pd.read_csv(path)
    return df[[c for c in df.columns if c.startswith("p_")]].to_numpy()


def weight_names(model_keras: Path, tmp: Path) -> tuple[list[str], dict]:
    """The datasets of the file's model.weights.h5, and its config.json."""
    with zipfile.ZipFile(model_keras) as z:
        config = json.loads(z.read("config.json"))
        z.extract("model.weights.h5", tmp)
    names = []
    with h5py.File(tmp / "model.weights.h5") as h:
        h.visititems(lambda k, v: names.append(k) if isinstance(v, h5py.Dataset) else None)
    return names, config


def interrupt(run: Path) -> Path:
    """The run as if killed after its last checkpoint, before the final writes."""
    for name in ("report.json", "thresholds.json", "model.keras", "predictions_dev.csv"):
        (run / name).unlink()
    shutil.rmtree(run / "preprocessor")
    return run


@pytest.fixture(scope="module")
def lean_run(data_dir, tmp_path_factory) -> Path:
    """The tiny config trained by `kemo train` with its defaults."""
    run_dir = tmp_path_factory.mktemp("lean") / "run"
    code, out, err = run_cli(["train", "--config", ROOT / "configs" / "tiny.toml", *SETS,
                              "--data-dir", data_dir, "--run-dir", run_dir, "--quiet"])
    assert code == 0, err
    return run_dir


def test_finished_run_has_no_checkpoints(lean_run):
    assert (lean_run / "report.json").is_file()
    assert not (lean_run / "checkpoints").exists()


def test_model_keras_holds_no_optimizer_state(lean_run, tmp_path):
    names, config = weight_names(lean_run / "model.keras", tmp_path)
    assert names and all(n.startswith(("layers/", "vars/")) for n in names), names
    assert not any("optimizer" in n for n in names)
    assert not config.get("compile_config")  # nothing to re-create an optimizer from


def test_lean_model_is_smaller_than_a_save_with_adamw(lean_run, tmp_path):
    """The same weights saved with AdamW built (as training's model was): the moments
    are twice the trainable weights, so the lean file is under half that size."""
    from kemo.prediction.trained_run import load_run
    from kemo.training.optimizer import make_optimizer

    run = load_run(lean_run)
    model = run.model
    model.compile(optimizer=make_optimizer(run.config, 10), loss="mse")
    model.optimizer.build(model.trainable_variables)
    model.save(tmp_path / "full.keras")
    names, _ = weight_names(tmp_path / "full.keras", tmp_path / "full")
    assert any(n.startswith("optimizer/") for n in names)  # the check above can fail
    lean, full = (lean_run / "model.keras").stat().st_size, (tmp_path / "full.keras").stat().st_size
    assert lean < full / 2, (lean, full)


def test_lean_model_reloads_and_predicts_as_trained(lean_run, data_dir, tmp_path):
    """`predict` (model.keras reloaded) == the trained model's own dev probabilities
    (predictions_dev.csv, written before model.keras); `explain` and `report` load it."""
    code, _, err = run_cli(["predict", lean_run, "--split", "dev", "--data-dir", data_dir,
                            "--out", tmp_path / "pred"])
    assert code == 0, err
    np.testing.assert_allclose(dev_probs(tmp_path / "pred" / "probs_eng.csv"),
                               dev_probs(lean_run / "predictions_dev.csv"), atol=2e-6)
    code, _, err = run_cli(["explain", lean_run, "--text", "I am so happy", "--num-samples",
                            "10", "--out", tmp_path / "explain"])
    assert code == 0, err
    code, _, err = run_cli(["report", lean_run, "--data-dir", data_dir, "--out",
                            tmp_path / "report"])
    assert code == 0, err


@pytest.mark.parametrize("keep", [True, False], ids=["keep-checkpoints", "default"])
def test_resume_uses_checkpoints_then_drops_them_unless_kept(keep, tiny_run, data_dir,
                                                             tmp_path):
    """An unfinished run resumes from its checkpoints; finishing deletes them unless
    --keep-checkpoints. (tiny_run kept its own: conftest trains it so.)"""
    assert (tiny_run / "checkpoints" / "LATEST").is_file()
    run = interrupt(Path(shutil.copytree(tiny_run, tmp_path / "run")))
    code, out, err = run_cli(["train", "--resume", run, "--data-dir", data_dir, "--quiet"]
                             + ["--keep-checkpoints"] * keep)
    assert code == 0, err
    assert f"resuming {run} after epoch 2" in out
    assert (run / "report.json").is_file()
    assert (run / "checkpoints" / "LATEST").is_file() == keep
    np.testing.assert_allclose(dev_probs(run / "predictions_dev.csv"),
                               dev_probs(tiny_run / "predictions_dev.csv"), atol=2e-6)
    names, _ = weight_names(run / "model.keras", tmp_path)
    assert not any("optimizer" in n for n in names)
