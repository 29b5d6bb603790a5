"""Data parallelism: 8 simulated CPU devices give the same metrics as one device."""

import json
import os
import subprocess
import sys

import numpy as np

from conftest import ROOT

SETS = ["train.epochs=1", "data.max_train_examples=320", "model.sequence_length=48",
        "data.length_buckets=[24]", "train.batch_size=16", "train.early_stopping_patience=0"]


def _train(run_dir, data_dir, *extra):
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    sets = [a for o in SETS + list(extra) for a in ("--set", o)]
    proc = subprocess.run([sys.executable, "scripts/train.py", "--backend", "jax", "--config",
                           "configs/tiny.toml", "--run-dir", str(run_dir), "--quiet", *sets],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, json.loads((run_dir / "history.json").read_text())


def test_data_parallel_matches_single_device(data_dir, tmp_path):
    out, sharded = _train(tmp_path / "dp", data_dir, 'train.distribution="data_parallel"')
    assert "data parallel over 8 devices" in out
    _, single = _train(tmp_path / "one", data_dir)
    for key in ("loss", "val_loss", "macro_f1", "val_macro_f1", "loss_anger"):
        np.testing.assert_allclose(sharded[0][key], single[0][key], atol=2e-4, err_msg=key)


def test_batch_not_divisible_by_devices_is_refused(data_dir, tmp_path):
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir),
           "XLA_FLAGS": "--xla_force_host_platform_device_count=8"}
    proc = subprocess.run([sys.executable, "scripts/train.py", "--config", "configs/tiny.toml",
                           "--run-dir", str(tmp_path / "x"), "--set", "train.batch_size=12",
                           "--set", 'train.distribution="data_parallel"'],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "error: config key 'train.batch_size': 12 does not split evenly over 8 devices" \
        in proc.stderr
    assert not (tmp_path / "x").exists()


def test_mixed_bfloat16_keeps_loss_and_metrics_in_float32(data_dir, tmp_path):
    import keras

    from kemo.config import load_config
    from kemo.training import train

    cfg = load_config(ROOT / "configs" / "tiny.toml",
                      SETS + ['train.dtype_policy="mixed_bfloat16"'])
    try:
        result = train(cfg, data_dir=data_dir, run_dir=tmp_path / "bf16", verbose=0)
        model = keras.models.load_model(tmp_path / "bf16" / "model.keras")
        dense = model.get_layer("logits")
        pooled = model.get_layer("pooling")
    finally:
        keras.config.set_dtype_policy("float32")
    assert pooled.compute_dtype == "bfloat16"  # the backbone and pooling compute in bf16
    assert dense.compute_dtype == "float32"  # logits, hence loss and metrics, in float32
    epoch = result["history"][0]
    assert all(np.isfinite(epoch[k]) for k in ("loss", "val_loss", "macro_f1", "val_macro_f1"))
