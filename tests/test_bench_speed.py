"""Smoke test of benchmarks/train_speed.py (kemo on JAX vs HF BERT on PyTorch)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import NO_TORCH, load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "train_speed.py"
TOKENIZER = Path("~/.cache/kemo/weights/minilm-l6-en/tokenizer.json").expanduser()


def _load_script():
    return load_benchmark("train_speed")


def test_kemo_batching_and_optimizer_import_without_tensorflow():
    """The benchmark's GPU path has no TensorFlow: kemo's batching, model, loss and
    optimizer must import with TensorFlow unavailable."""
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "import os; os.environ['KERAS_BACKEND'] = 'jax'\n"
            "from kemo.data.pipeline import batches, epoch_indices\n"
            "from kemo.models.classifier import build_classifier\n"
            "from kemo.training.losses import MaskedBinaryCrossentropy\n"
            "from kemo.training.optimizer import make_optimizer\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


@pytest.fixture(scope="module")
def tokens_file(data_dir, tmp_path_factory):
    """English train texts tokenised once by the benchmark itself (--save-tokens)."""
    pytest.importorskip("tokenizers")
    if not TOKENIZER.is_file():
        pytest.skip(f"{TOKENIZER} not materialised (python scripts/setup_weights.py minilm-l6-en)")
    path = tmp_path_factory.mktemp("bench") / "eng.npz"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--data-dir", str(data_dir),
                           "--sequence-length", "32", "--save-tokens", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "wrote" in proc.stdout and path.is_file()
    return path


@pytest.mark.parametrize("loop", ["fit", "jit"])
def test_train_speed_smoke(tokens_file, tmp_path, loop):
    """Both sides train, infer and run the padded step from pre-tokenised arrays, with
    TensorFlow blocked (as on a GPU machine); every figure of the table is positive."""
    pytest.importorskip("torch", reason=NO_TORCH)
    pytest.importorskip("transformers", reason=NO_TORCH)
    out = tmp_path / "speed.json"
    cmd = [sys.executable, str(SCRIPT), "--model", "tiny", "--steps", "2", "--repeats", "1",
           "--epochs", "2", "--batch-size", "8", "--max-examples", "64",
           "--sequence-length", "32", "--buckets", "16", "--padded-steps", "12",
           "--kemo-loop", loop, "--tokens", str(tokens_file), "--json", str(out)]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "kemo/torch" in proc.stdout and "padded step 8x32 samples/s" in proc.stdout
    result = json.loads(out.read_text())
    assert result["tensorflow_loaded"] is False
    assert result["n_train_rows"] == 16  # 2 steps of 8
    for side in ("kemo", "torch"):
        r = result["results"][side]
        for key in ("train_samples_per_s", "infer_samples_per_s", "train_epoch_s",
                    "train_epoch_e2e_s", "train_run_e2e_s", "train_tflops", "infer_tflops"):
            assert r[key] > 0, (side, key, r[key])
        assert len(r["train_epoch_all_s"]) == 2
        # The padded step's time is 12 steps minus 1 step; with tiny steps, fit's fixed
        # cost per call can hide it (then it is reported as n/a, never as a wrong number).
        step = r["padded_step_samples_per_s"]
        if loop == "jit" or side == "torch" or step is not None:
            assert step > 0 and r["padded_step_tflops"] > 0, (side, step)
            # FLOPs per padded sequence: 6*N*T + 12*L*d*T^2, N = 65,856 for tiny, 5 labels.
            assert r["padded_step_tflops"] == pytest.approx(
                step * (6 * 65856 * 32 + 12 * 2 * 64 * 32 ** 2) / 1e12)
    kemo = result["results"]["kemo"]
    assert kemo["train_compile_s"] > 0 and kemo["infer_compile_s"] > 0
    # Compile happened before the clock: a timed epoch is far shorter than compiling.
    assert max(kemo["train_epoch_all_s"]) < kemo["train_compile_s"]
    assert kemo["train_run_e2e_s"] == pytest.approx(
        2 * kemo["train_epoch_s"] + kemo["train_compile_s"])
