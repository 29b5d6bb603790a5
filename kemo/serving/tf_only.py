"""A fresh TensorFlow-only Python for serving checks: the SavedModel without Keras or JAX.

Latencies are measured in a fresh subprocess that imports TensorFlow with Keras,
keras-hub and JAX made unimportable (`import tensorflow` would otherwise import the
installed Keras and JAX itself) and registers the tensorflow-text kernels straight
from the installed package's op libraries (`import tensorflow_text` needs `tf.keras`).

Example:
    benchmark_saved_model("runs/tiny/export/saved_model", batch_size=32)["warm_median_s"]
    run_tf_only('print(json.dumps({"tf": tf.__version__}))')
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


# Texts for the latency benchmark: short social-media posts like BRIGHTER's, mixed
# languages and scripts, cycled to the batch size.
BENCHMARK_TEXTS = [
    "I can't believe they cancelled the show, I'm so angry right now!",
    "Finally got the job!!! Best day of my life 😀🎉",
    "The house was silent and I heard footsteps upstairs.",
    "Miss you grandma, every single day.",
    "Wait, what? He actually showed up?",
    "Not sure how I feel about this.",
    "यह सुनकर मुझे बहुत दुख हुआ।",
    "ይህ በጣም የሚያስደስት ዜና ነው።",
    "我今天非常开心，终于见到你了！",
    "Je suis tellement fatiguée de tout ça...",
    "¡No puedo creer que hayamos ganado el partido!",
    "Ich habe Angst vor morgen.",
    "lol ok",
    "The storm knocked out power for the whole street and we sat in the dark for "
    "hours, listening to the wind, wondering if the old oak would come down on the roof.",
    "Thank you all so much for the birthday wishes ❤️",
    "Why does this always happen to me",
]

# Run first in a process that must serve the SavedModel with TensorFlow alone.
TF_ONLY_PRELUDE = r'''
import glob, importlib.abc, importlib.machinery, importlib.util, os, sys
BLOCKED = ("keras", "keras_hub", "jax", "jaxlib", "tf_keras")

class _Refuse(importlib.abc.Loader):
    def create_module(self, spec):
        raise ModuleNotFoundError(f"{spec.name} is blocked: TensorFlow-only process",
                                  name=spec.name)

    def exec_module(self, module):
        raise ModuleNotFoundError(module.__name__)

class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, _Refuse())
        return None

sys.meta_path.insert(0, _Block())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

def _load_tf_text_ops():
    spec = importlib.util.find_spec("tensorflow_text")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("tensorflow-text is not installed")
    libs = sorted(glob.glob(os.path.join(spec.submodule_search_locations[0],
                                         "python", "ops", "_*.so")))
    if not libs:
        raise ImportError("no tensorflow-text op libraries found")
    for lib in libs:
        tf.load_op_library(lib)

_load_tf_text_ops()

def blocked_modules_loaded():
    return sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in BLOCKED})
'''

_BENCHMARK_SCRIPT = r'''
import json, statistics, time
saved_model, texts, repeats = {saved_model!r}, {texts!r}, {repeats!r}
t0 = time.perf_counter()
model = tf.saved_model.load(saved_model)
serve = model.signatures["serving_default"]
load_s = time.perf_counter() - t0
batch = tf.constant(texts)
t0 = time.perf_counter()
serve(texts=batch)["probabilities"].numpy()
cold_s = time.perf_counter() - t0
warm = []
for _ in range(repeats):
    t0 = time.perf_counter()
    serve(texts=batch)["probabilities"].numpy()
    warm.append(time.perf_counter() - t0)
print(json.dumps({{"load_s": load_s, "cold_s": cold_s, "warm_median_s": statistics.median(warm),
                  "warm_min_s": min(warm), "batch_size": len(texts), "repeats": repeats,
                  "blocked_modules_loaded": blocked_modules_loaded()}}))
'''


def tf_only_script(body: str) -> str:
    """`body` preceded by `TF_ONLY_PRELUDE` (tf, tf-text ops; no Keras/keras-hub/JAX)."""
    return TF_ONLY_PRELUDE + "\n" + body


def run_tf_only(body: str, timeout: float = 300) -> dict:
    """Run `body` in a fresh TensorFlow-only Python; it prints one JSON line last."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("KERAS_BACKEND", None)
    proc = subprocess.run([sys.executable, "-c", tf_only_script(body)], capture_output=True,
                          text=True, timeout=timeout, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"TensorFlow-only subprocess failed (exit {proc.returncode}):\n{tail}")
    return json.loads(lines[-1])


def benchmark_saved_model(saved_model, batch_size: int = 32, repeats: int = 10,
                          texts=None) -> dict:
    """Load time, cold (first call) and warm (median of `repeats`) latency for one batch."""
    texts = list(texts or BENCHMARK_TEXTS)
    batch = [texts[i % len(texts)] for i in range(batch_size)]
    body = _BENCHMARK_SCRIPT.format(saved_model=str(saved_model), texts=batch, repeats=repeats)
    return run_tf_only(body)
