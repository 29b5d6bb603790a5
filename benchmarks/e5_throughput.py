"""Training throughput of multilingual-e5-small on the real length mix of all 28 languages.

    python benchmarks/e5_throughput.py                       # every setting, ~25 min on 2 cores
    python benchmarks/e5_throughput.py --only baseline freeze6 --rows 192
    python benchmarks/e5_throughput.py --json benchmarks/results/e5-throughput.json

What it measures: rows per second of kemo's own train step (`model.fit` with the focal
loss, macro-F1 and per-label-loss metrics, AdamW with warmup and cosine decay, kemo's
length-bucketed numpy batches) on `--rows` training rows drawn at random from the
65,094 training rows of the 28 Track A languages, so the token lengths are the full-data
run's. Every setting runs in its own process (the Keras backend is fixed per process),
one after another in one invocation, on the same rows: first one batch of every length
bucket (the compile, timed apart as "compile s"), then one timed `fit` over all rows.

The settings change one thing at a time from `baseline`, today's `configs/offline/
e5_all.toml` (JAX, float32, batch 32, buckets [32, 64] + 128, token embeddings frozen,
full 250k vocabulary), then combine the ones that help. Preparation (tokenising every
training text with the e5 tokenizer, ~3 min) is cached in `.bench/e5_throughput/`.
Needs `e5-small-multi` (`kemo weights fetch e5-small-multi`) and the Track A data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CACHE = ROOT / ".bench" / "e5_throughput"
TODAY = [32, 64]  # e5_all.toml's data.length_buckets (+ sequence_length 128)
FINE = [16, 24, 32, 48, 64, 96]

def xla(flags: str) -> dict:
    """A setting that changes only XLA's flags (the step itself unchanged)."""
    return {"env": {"XLA_FLAGS": flags}}


# name -> (what changes, settings)
BASE = {"backend": "jax", "dtype_policy": "float32", "batch_size": 32, "buckets": TODAY,
        "freeze_token_embeddings": True, "prune": False, "freeze_layers": 0}
VARIANTS = {
    "baseline": ("e5_all.toml today", {}),
    "torch": ("backend torch", {"backend": "torch"}),
    "tensorflow": ("backend tensorflow", {"backend": "tensorflow"}),
    "emb_trainable": ("token embeddings trainable", {"freeze_token_embeddings": False}),
    "pruned": ("vocabulary pruned (frozen)", {"prune": True}),
    "pruned_trainable": ("pruned + embeddings trainable",
                         {"prune": True, "freeze_token_embeddings": False}),
    "bs16": ("batch 16", {"batch_size": 16}),
    "bs64": ("batch 64", {"batch_size": 64}),
    "bf16": ("mixed_bfloat16", {"dtype_policy": "mixed_bfloat16"}),
    "fine_buckets": (f"buckets {FINE}", {"buckets": FINE}),
    "freeze6": ("lowest 6 of 12 layers frozen", {"freeze_layers": 6}),
    "freeze9": ("lowest 9 of 12 layers frozen", {"freeze_layers": 9}),
    "fine_freeze6": ("fine buckets + freeze 6", {"buckets": FINE, "freeze_layers": 6}),
    "fine_freeze6_bs64": ("fine buckets + freeze 6 + batch 64",
                          {"buckets": FINE, "freeze_layers": 6, "batch_size": 64}),
    "fine_freeze6_bs16": ("fine buckets + freeze 6 + batch 16",
                          {"buckets": FINE, "freeze_layers": 6, "batch_size": 16}),
    "tf_freeze6": ("tensorflow + freeze 6", {"backend": "tensorflow", "freeze_layers": 6}),
    "tf_fine_freeze6": ("tensorflow + fine buckets + freeze 6",
                        {"backend": "tensorflow", "buckets": FINE, "freeze_layers": 6}),
    "torch_fine_freeze6": ("torch + fine buckets + freeze 6",
                           {"backend": "torch", "buckets": FINE, "freeze_layers": 6}),
    "tf_bf16": ("tensorflow + mixed_bfloat16",
                {"backend": "tensorflow", "dtype_policy": "mixed_bfloat16"}),
    # XLA CPU and JAX options (issue 36): environment only, the step itself unchanged
    "xla_vec512": ("XLA: prefer 512-bit vectors", xla("--xla_cpu_prefer_vector_width=512")),
    "prng_rbg": ("JAX: rbg random bits (dropout)", {"env": {"JAX_DEFAULT_PRNG_IMPL": "rbg"}}),
    "ynn_off": ("XLA: no YNNPACK fusions",
                xla("--xla_cpu_experimental_ynn_fusion_type=-dot,-eltwise,-reduce")),
    "xnn_dot": ("XLA: XNNPACK dot fusions", xla("--xla_cpu_experimental_xnn_fusion_type=dot")),
    "onednn_dot": ("XLA: oneDNN dot fusions",
                   xla("--xla_cpu_experimental_onednn_fusion_type=dot")),
    "vec512_rbg": ("512-bit vectors + rbg", {"env": {
        "XLA_FLAGS": "--xla_cpu_prefer_vector_width=512", "JAX_DEFAULT_PRNG_IMPL": "rbg"}}),
    "concurrency_sched": ("XLA: concurrency-optimised scheduler",
                          xla("--xla_cpu_enable_concurrency_optimized_scheduler=true")),
    "sequential_sched": ("XLA: no concurrency-optimised scheduler",
                         xla("--xla_cpu_enable_concurrency_optimized_scheduler=false")),
    "fast_math": ("XLA: fast math", xla("--xla_cpu_enable_fast_math=true")),
    "eigen_1thread": ("XLA: Eigen single-threaded", xla("--xla_cpu_multi_thread_eigen=false")),
    "emitters_off": ("XLA: old fusion emitters", xla("--xla_cpu_use_fusion_emitters=false")),
    "ynn_no_reduce": ("XLA: no YNNPACK reduce fusions",
                      xla("--xla_cpu_experimental_ynn_fusion_type=-reduce")),
    "ynn_dot_only": ("XLA: YNNPACK for dots only",
                     xla("--xla_cpu_experimental_ynn_fusion_type=-eltwise,-reduce")),
    # kemo's training path, not an option: its callbacks read the loss every step
    # (StopOnNanLoss, the progress line), which makes the host wait for each step
    "sync_steps": ("kemo's per-step callbacks (sync)", {"kemo_callbacks": True}),
}


def prepare(data_dir) -> Path:
    """Tokenise every training text of the 28 languages once (cached)."""
    import numpy as np

    out = CACHE / "train_tokens.npz"
    if out.is_file():
        return out
    os.environ.setdefault("KERAS_BACKEND", "jax")
    from kemo.config import ModelConfig
    from kemo.data.brighter import LANGUAGES, load_split, resolve_data_dir
    from kemo.data.pipeline import tokenize
    from kemo.models import load_preprocessor
    from kemo.models import vocab_prune as vp

    t0 = time.perf_counter()
    ex = load_split(resolve_data_dir(data_dir), "train", LANGUAGES)
    pre = load_preprocessor(ModelConfig(preset="e5-small-multi", sequence_length=128))
    arrays = tokenize(ex.texts, pre)
    keep = vp.used_token_ids([arrays["token_ids"]], vp.special_token_ids(pre.tokenizer))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(out, token_ids=arrays["token_ids"], padding_mask=arrays["padding_mask"],
             y=ex.y, langs=ex.langs.astype(str), keep=keep)
    print(f"tokenised {len(ex)} training rows in {time.perf_counter() - t0:.0f}s "
          f"({len(keep)} distinct ids)", flush=True)
    return out


def sample_rows(spec: dict) -> tuple[dict, "np.ndarray"]:
    """`spec["rows"]` training rows of the cached tokens, drawn with seed 0."""
    import numpy as np

    data = np.load(spec["tokens"], allow_pickle=False)
    rows = np.random.default_rng(0).choice(len(data["y"]), spec["rows"], replace=False)
    arrays = {"token_ids": data["token_ids"][rows], "padding_mask": data["padding_mask"][rows],
              "segment_ids": np.zeros_like(data["token_ids"][rows])}
    return arrays, data["y"][rows]


def build_step(spec: dict, arrays: dict, y, backbone=None) -> tuple:
    """kemo's e5 train step as `child` times it: the compiled model, its batches
    (`TokenBatches`), and one batch of every padded length (the compile's warm-up).
    `backbone` replaces the e5 weights (benchmarks/step_profile.py --tiny)."""
    import keras
    import numpy as np

    from kemo.config import Config
    from kemo.data.numpy_batches import TokenBatches
    from kemo.data.pipeline import batch_arrays
    from kemo.training.losses import inverse_frequency_alpha, make_loss
    from kemo.models import build_classifier, load_backbone
    from kemo.models.backbone_layers import freeze_lower_layers, token_embedding
    from kemo.models.vocab_prune import prune_backbone
    from kemo.training.metrics import make_metrics
    from kemo.training.optimizer import make_optimizer

    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(spec["dtype_policy"])
    cfg = Config()
    cfg.model.preset, cfg.model.sequence_length = "e5-small-multi", 128
    cfg.train.batch_size, cfg.train.learning_rate = spec["batch_size"], 1e-4
    if backbone is None:
        backbone = load_backbone(cfg.model)
    if spec["prune"]:
        keep = np.load(spec["tokens"], allow_pickle=False)["keep"]
        backbone = prune_backbone(backbone, keep)
        arrays["token_ids"] = np.searchsorted(keep, arrays["token_ids"]).astype("int32")
    if spec["freeze_token_embeddings"]:
        token_embedding(backbone).trainable = False
    freeze_lower_layers(backbone, spec["freeze_layers"])
    model = build_classifier(backbone, y.shape[1], "mean", 0.1)
    loss = make_loss("focal", 2.0, inverse_frequency_alpha(np.clip(y, 0, 1), (y >= 0) * 1.0))
    ds = TokenBatches(arrays, y, spec["batch_size"], seed=0, epochs=1, buckets=spec["buckets"])
    model.compile(optimizer=make_optimizer(cfg, len(ds)), loss=loss,
                  metrics=make_metrics([f"l{j}" for j in range(y.shape[1])], loss))
    lengths = sorted({length for _, length in ds.plan})
    warm = [batch_arrays(arrays, y, next(i for i, b in ds.plan if b == length), length,
                         spec["batch_size"], pad=False) for length in lengths]
    return model, ds, warm


def warm_up(model, warm: list) -> float:
    """Seconds of one `fit` over one batch of each padded length (the compiles)."""
    import keras

    class Batches(keras.utils.PyDataset):  # one batch of each padded length
        def __len__(self):
            return len(warm)

        def __getitem__(self, i):
            return warm[i]

    t0 = time.perf_counter()
    model.fit(Batches(), epochs=1, steps_per_epoch=len(warm), verbose=0, shuffle=False)
    return time.perf_counter() - t0


def kemo_callbacks() -> list:
    """The callbacks `kemo train` adds that act after every step (setting `sync_steps`)."""
    import tempfile

    from kemo.training.monitor import EpochProgress
    from kemo.training.nan_guard import StopOnNanLoss

    progress = EpochProgress()
    progress.verbose = 2  # a log file's closing line, as under `kemo train > log`
    return [StopOnNanLoss(tempfile.mkdtemp()), progress]


def child(spec: dict) -> dict:
    """One setting, in this process (its backend already chosen): compile, then time."""
    import numpy as np

    arrays, y = sample_rows(spec)
    t0 = time.perf_counter()
    model, ds, warm = build_step(spec, arrays, y)
    load_s = time.perf_counter() - t0
    compile_s = warm_up(model, warm)
    t0 = time.perf_counter()
    hist = model.fit(ds, epochs=1, steps_per_epoch=len(ds), verbose=0, shuffle=False,
                     callbacks=kemo_callbacks() if spec.get("kemo_callbacks") else None)
    fit_s = time.perf_counter() - t0
    lengths = sorted({length for _, length in ds.plan})
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return {"rows_per_s": len(ds) * spec["batch_size"] / fit_s, "fit_s": fit_s,
            "compile_s": compile_s, "load_s": load_s, "steps": len(ds), "buckets_used": lengths,
            "trainable_params": trainable, "loss": float(hist.history["loss"][-1])}


def run_variant(name: str, tokens: Path, rows: int, timeout: int) -> dict:
    what, change = VARIANTS[name]
    spec = {**BASE, **change, "tokens": str(tokens), "rows": rows}
    env = {**os.environ, **spec.get("env", {}), "KERAS_BACKEND": spec["backend"]}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)],
                              env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"name": name, "what": what, "error": f"timed out after {timeout}s"}
    result = {"name": name, "what": what, **spec, "wall_s": time.perf_counter() - t0}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        result["error"] = (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]
    else:
        result.update(json.loads(lines[-1]))
    return result


def main(argv=None) -> int:
    import kemo.log

    kemo.log.to_console()  # kemo's own lines (vocabulary pruned to ...) as the CLI shows them
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=list(VARIANTS), help="settings to run")
    ap.add_argument("--rows", type=int, default=384, help="timed rows per setting")
    ap.add_argument("--data-dir", help="Track A root (default: $KEMO_DATA_DIR, then "
                    "../shared/data/brighter/track_a)")
    ap.add_argument("--timeout", type=int, default=1200, help="seconds per setting")
    ap.add_argument("--repeats", type=int, default=1, help="rounds over the settings, each "
                    "round in the other order (shared-machine noise then hits all alike); "
                    "the table gives the median")
    ap.add_argument("--json", help="write the results here too")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))), flush=True)
        return 0
    from kemo.machine import cpu_info, describe_cpu

    data_dir = args.data_dir or os.environ.get("KEMO_DATA_DIR") or str(
        ROOT.parent / "shared" / "data" / "brighter" / "track_a")
    cpu = cpu_info()
    print(f"cpu: {describe_cpu(cpu)}; {args.rows} training rows per setting, drawn from "
          "all 28 languages", flush=True)
    tokens = prepare(data_dir)
    import numpy as np

    lengths = np.load(tokens)["padding_mask"].sum(axis=1)
    print(f"token lengths (e5, all train rows): mean {lengths.mean():.1f}, median "
          f"{np.median(lengths):.0f}, p95 {np.percentile(lengths, 95):.0f}, "
          f"at 128 (truncated) {np.mean(lengths >= 128):.1%}", flush=True)
    results = []
    header = (f"{'setting':<18}{'what':<38}{'rows/s':>8}{'x base':>8}{'compile s':>11}"
              f"{'trainable':>12}")
    names = args.only or list(VARIANTS)
    rounds = [names if r % 2 == 0 else names[::-1] for r in range(args.repeats)]
    runs = {name: [] for name in names}
    for r, order in enumerate(rounds):
        for name in order:
            res = run_variant(name, tokens, args.rows, args.timeout)
            runs[name].append(res)
            results.append({**res, "round": r})
            if "error" in res:
                print(f"  {name} (round {r + 1}): error: {res['error']}", flush=True)
            elif args.repeats > 1:
                print(f"  {name} (round {r + 1}): {res['rows_per_s']:.1f} rows/s", flush=True)
    base = None
    print(header, flush=True)
    for name in names:
        ok = [x for x in runs[name] if "error" not in x]
        if not ok:
            print(f"{name:<18}{VARIANTS[name][0]:<38}  error", flush=True)
            continue
        rate = float(np.median([x["rows_per_s"] for x in ok]))
        compile_s = float(np.median([x["compile_s"] for x in ok]))
        if name == "baseline":
            base = rate
        ratio = f"{rate / base:.2f}" if base else "-"
        print(f"{name:<18}{VARIANTS[name][0]:<38}{rate:>8.1f}{ratio:>8}{compile_s:>11.1f}"
              f"{ok[0]['trainable_params'] / 1e6:>11.1f}M", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"cpu": cpu, "rows": args.rows,
                                               "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
