"""Smoke test of benchmarks/train_speed.py (kemo on JAX vs HF BERT on PyTorch)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "train_speed.py"
TOKENIZER = Path("~/.cache/kemo/weights/minilm-l6-en/tokenizer.json").expanduser()


def _load_script():
    spec = importlib.util.spec_from_file_location("train_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_kemo_batching_and_optimizer_import_without_tensorflow():
    """The benchmark's GPU path has no TensorFlow: kemo's batching, model, loss and
    optimizer must import with TensorFlow unavailable."""
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "import os; os.environ['KERAS_BACKEND'] = 'jax'\n"
            "from kemo.data.pipeline import batches, epoch_indices\n"
            "from kemo.models.classifier import build_classifier\n"
            "from kemo.losses import MaskedBinaryCrossentropy\n"
            "from kemo.training import make_optimizer\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_train_speed_smoke(data_dir, tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    if not TOKENIZER.is_file():
        pytest.skip(f"{TOKENIZER} not materialised (python scripts/setup_weights.py minilm-l6-en)")
    out = tmp_path / "speed.json"
    cmd = [sys.executable, str(SCRIPT), "--model", "tiny", "--steps", "2", "--repeats", "1",
           "--batch-size", "8", "--max-examples", "64", "--sequence-length", "32",
           "--buckets", "32", "--data-dir", str(data_dir), "--json", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "kemo/torch" in proc.stdout and "train samples/s" in proc.stdout
    result = json.loads(out.read_text())
    assert result["tensorflow_loaded"] is False
    for side in ("kemo", "torch"):
        r = result["results"][side]
        for key in ("train_samples_per_s", "infer_samples_per_s", "train_epoch_s",
                    "train_epoch_e2e_s", "train_tflops", "infer_tflops"):
            assert r[key] > 0, (side, key, r[key])
    assert result["results"]["kemo"]["train_compile_s"] > 0
