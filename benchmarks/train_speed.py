"""Training and inference speed: kemo (Keras 3 on JAX) vs Hugging Face BERT + PyTorch.

    python benchmarks/train_speed.py                                  # CPU, small, 1 epoch
    python benchmarks/train_speed.py --steps 20 --repeats 1           # quick look
    python benchmarks/train_speed.py --device gpu --model mbert-base --dtype bfloat16 \
        --batch-size 32
    python benchmarks/train_speed.py --languages all --tokenizer e5 --save-tokens t.npz
    python benchmarks/train_speed.py --tokens t.npz ...    # no data files/pandas/tokenizers

Both sides train the same BERT architecture (random weights) on the same data, in the
same batches, in one process:

* kemo: keras-hub `BertBackbone` + `kemo.models.classifier.build_classifier` (pooling,
  dropout, float32 logits) + `kemo.training.losses.MaskedBinaryCrossentropy` + Keras AdamW as
  `kemo.training.optimizer.make_optimizer` builds it (constant learning rate, no decay on
  bias/gamma/beta). By default (`--kemo-loop fit`) it trains as `scripts/train.py`
  does: `model.fit` with kemo's metrics (macro-F1 and per-label loss), fed kemo's
  batches (a PyDataset here, as tf.data is not on a GPU machine); each bucket's
  program is compiled before the clock starts by one `fit` (and one `predict`) call
  on one batch per bucket (timed as compile, and included in the end-to-end times). `--kemo-loop jit` is a
  hand-written loop instead: Keras' stateless API (`model.stateless_call`,
  `optimizer.stateless_apply`) under one `jax.jit` with the state donated, compiled
  ahead of time, no metrics, losses read once per epoch.
* torch: `transformers.BertModel` (same sizes, tanh-GELU like keras-hub, no pooler),
  the same pooling/dropout/Linear head, masked BCE-with-logits, `torch.optim.AdamW`
  (same decay exclusions and epsilon), eager loop, `torch.no_grad()` inference.

Data: the real BRIGHTER Track A train texts (`--data-dir`, else `$KEMO_DATA_DIR`, else
../shared/data/brighter/track_a beside the checkout; `--languages all` for all 28),
tokenised once with the HF `tokenizers` library (`--tokenizer minilm`, English
WordPiece, or `e5`, XLM-R SentencePiece) into numpy arrays that both sides read; or
read pre-tokenised from `--tokens` (written by `--save-tokens`). Batches are kemo's
(`kemo.data.pipeline.epoch_indices` + `batches`: seeded permutation, length-sorted
inside windows, shuffled; inference shortest first, as `kemo.prediction.batches.predict_probs`).
kemo pads each batch to its length bucket (`--buckets`, one compiled program per
bucket), torch to the batch's longest sequence. `--padded-steps` also times train
steps with every row padded to `--sequence-length`, FLOPs counted on the padded tokens
(the padded step's MFU). Nothing here imports TensorFlow (it is blocked, so keras-hub
runs as it does where TensorFlow is absent).

FLOPs are counted analytically on the real (unpadded) tokens, the same for both sides:
  N      = layers * (4 d^2 + 2 d f) + d * labels        (matmul weights, no embeddings)
  train  = sum over sequences of  6 N T + 12 layers d T^2
  infer  = sum over sequences of  2 N T +  4 layers d T^2
(T = real tokens of the sequence; the T^2 terms are Q K^T and attention x V). Padding
makes either side compute more than that: see the "computed / real tokens" row.

Timings interleave the two sides (kemo, torch, torch, kemo, ...) over `--repeats`
epochs and report medians. On CPU, torch gets `OMP_WAIT_POLICY=PASSIVE` unless set:
with spinning OpenMP threads on a machine whose cores are shared with other work, its
steps were several times slower. On GPU, float32 runs torch with TF32 matmuls
(`set_float32_matmul_precision("high")`), as XLA does by default. `--compile-cache DIR`
turns on JAX's persistent compilation cache (a second run loads the programs).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

from kemo.machine import cpu_info, describe_cpu

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "brighter" / "track_a"
WEIGHTS = Path(os.environ.get("KEMO_WEIGHTS_DIR", "~/.cache/kemo/weights"))
TOKENIZERS = {"minilm": "minilm-l6-en", "e5": "e5-small-multi"}  # setup_weights.py names
DEFAULT_TOKENIZER = "minilm"

SHAPES = {  # layers, hidden, heads, intermediate, vocabulary
    "tiny": (2, 64, 2, 128, 250002),  # smoke tests and rehearsals only
    "small": (6, 384, 12, 1536, 30522),  # MiniLM-L6
    "mbert-base": (12, 768, 12, 3072, 119547),
    "xlmr-base": (12, 768, 12, 3072, 250002),  # XLM-R's position offset ignored
}
MAX_POSITIONS = 512
# Dense peak TFLOP/s by device_kind substring: bf16, and float32 (as TF32, which both
# JAX's default matmul precision and torch with `set_float32_matmul_precision("high")`
# use on these GPUs).
PEAK_TFLOPS = {
    "H200": {"bfloat16": 989.0, "float32": 494.7},
    "H100": {"bfloat16": 989.0, "float32": 494.7},  # SXM; PCIe is lower (756 / 378)
    "A100": {"bfloat16": 312.0, "float32": 156.0},
}


# --------------------------------------------------------------------------- setup

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(SHAPES), default="small")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=1,
                   help="epochs timed per side per repeat (default 1)")
    p.add_argument("--repeats", type=int, default=2,
                   help="interleaved repeats (kemo,torch / torch,kemo ...); medians reported")
    p.add_argument("--steps", type=int, default=0,
                   help="train/inference batches per epoch (0: the whole epoch)")
    p.add_argument("--sequence-length", type=int, default=128)
    p.add_argument("--buckets", default="32,64,128",
                   help="kemo's length buckets (comma-separated; the sequence length caps)")
    p.add_argument("--pooling", choices=("cls", "mean"), default="mean")
    p.add_argument("--dropout", type=float, default=0.1, help="backbone and head dropout")
    p.add_argument("--fused-attention", action="store_true",
                   help="no dropout on attention probabilities, on both sides (kemo's "
                        "model.fused_attention: Keras then runs fused dot-product attention)")
    p.add_argument("--languages", default="eng", help="comma-separated codes, or 'all'")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--tokenizer", default=None,
                   help="a tokenizer.json, or minilm (English WordPiece) or e5 (XLM-R "
                        "SentencePiece, ~100 languages) as scripts/setup_weights.py "
                        f"materialises them (default {DEFAULT_TOKENIZER})")
    p.add_argument("--max-examples", type=int, default=0, help="0: all training rows")
    p.add_argument("--learning-rate", type=float, default=2e-5)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (0: all cores, as XLA's CPU backend uses)")
    p.add_argument("--peak-tflops", type=float, default=0.0,
                   help="peak dense TFLOP/s for the MFU row (0: known GPUs, n/a on CPU)")
    p.add_argument("--kemo-loop", choices=("fit", "jit"), default="fit",
                   help="fit: keras model.fit with kemo's loss and metrics, as "
                        "scripts/train.py runs; jit: a hand-written AOT-compiled stateless step")
    p.add_argument("--compile-cache", default=None, metavar="DIR",
                   help="JAX persistent compilation cache (a second run loads, not compiles)")
    p.add_argument("--skip", choices=("none", "kemo", "torch"), default="none",
                   help="time only one side")
    p.add_argument("--padded-steps", type=int, default=10,
                   help="train steps timed at batch x --sequence-length, every row padded "
                        "to the full length (the MFU of the padded step; 0 skips); the "
                        "time of 1 step is subtracted, so a call's fixed cost cancels")
    p.add_argument("--tokens", default=None, metavar="NPZ",
                   help="pre-tokenised train data from --save-tokens: no data files, "
                        "pandas or tokenizers needed (e.g. on a GPU machine)")
    p.add_argument("--save-tokens", default=None, metavar="NPZ",
                   help="write the tokenised train data here (ragged, compressed) and stop")
    p.add_argument("--json", default=None, help="also write the results here")
    return p.parse_args(argv)


def setup_environment(args) -> None:
    """Backend, platform and the TensorFlow block: must run before keras/jax import."""
    for name in ("tensorflow", "tensorflow_text"):
        if name not in sys.modules:  # keras-hub then takes its no-TensorFlow path
            sys.modules[name] = None
    os.environ["KERAS_BACKEND"] = "jax"
    if args.device == "cpu":  # idle OpenMP threads sleep: spinning ones stall on a busy machine
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"
    else:
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


# ---------------------------------------------------------------------------- data

def load_data(args):
    """Targets and the one-off tokenisation into padded numpy arrays.

    Returns (y, arrays, tokenize_s, source). With `--tokens`, both come from a file
    that `--save-tokens` wrote (token ids stored ragged: ids + offsets).
    """
    import numpy as np

    if args.tokens:
        t0 = time.perf_counter()
        with np.load(args.tokens, allow_pickle=False) as f:
            ids, offsets, y = f["ids"], f["offsets"], f["y"]
            source = str(f["source"])
            langs = str(f["languages"])
            saved_length = int(f["sequence_length"])
        if args.sequence_length > saved_length:
            raise SystemExit(f"{args.tokens}: texts were truncated to {saved_length} tokens, "
                             f"below --sequence-length {args.sequence_length}")
        if args.languages != langs:
            print(f"note: --tokens holds {langs} (not --languages {args.languages})")
            args.languages = langs
        rows = _subset_rows(np, len(y), args)
        y = y[rows]
        arrays = _pad(np, [ids[offsets[i]:offsets[i + 1]] for i in rows], args.sequence_length)
        return y, arrays, time.perf_counter() - t0, f"{args.tokens}, from {source}"
    from tokenizers import Tokenizer

    from kemo.data.brighter import LANGUAGES, load_split, resolve_data_dir

    data_dir = args.data_dir or os.environ.get("KEMO_DATA_DIR") or str(DEFAULT_DATA)
    langs = list(LANGUAGES) if args.languages == "all" else args.languages.split(",")
    train = load_split(resolve_data_dir(data_dir), "train", langs)
    train = train.subset(_subset_rows(np, len(train), args))
    name = args.tokenizer or DEFAULT_TOKENIZER
    tok_path = (WEIGHTS / TOKENIZERS[name] / "tokenizer.json" if name in TOKENIZERS
                else Path(name)).expanduser()
    if not tok_path.is_file():
        raise SystemExit(f"{tok_path}: not found (python scripts/setup_weights.py "
                         f"{TOKENIZERS.get(name, '')} materialises it, or pass --tokenizer)")
    t0 = time.perf_counter()
    tok = Tokenizer.from_file(str(tok_path))
    tok.no_padding()
    tok.enable_truncation(max_length=args.sequence_length)
    enc = [np.asarray(e.ids, np.int32) for e in tok.encode_batch([str(t) for t in train.texts])]
    arrays = _pad(np, enc, args.sequence_length)
    tokenize_s = time.perf_counter() - t0
    if args.save_tokens:
        np.savez_compressed(
            args.save_tokens, ids=np.concatenate(enc),
            offsets=np.cumsum([0] + [len(e) for e in enc]), y=train.y,
            source=f"{tok_path.parent.name}/{tok_path.name}", languages=args.languages,
            sequence_length=args.sequence_length)
        print(f"wrote {args.save_tokens}: {len(enc)} rows, "
              f"{Path(args.save_tokens).stat().st_size / 1e6:.1f} MB")
    return train.y, arrays, tokenize_s, str(tok_path)


def _subset_rows(np, n, args):
    """The rows kept: all, or a seeded subset of `--max-examples` (in file order)."""
    if args.max_examples and args.max_examples < n:
        return np.sort(np.random.default_rng(args.seed).permutation(n)[:args.max_examples])
    return np.arange(n)


def _pad(np, sequences, full):
    """Ragged token id sequences -> the padded arrays a BERT backbone takes."""
    token_ids = np.zeros((len(sequences), full), np.int32)
    padding_mask = np.zeros((len(sequences), full), np.int32)
    for i, ids in enumerate(sequences):
        ids = ids[:full]
        token_ids[i, :len(ids)] = ids
        padding_mask[i, :len(ids)] = 1
    return {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids),
            "padding_mask": padding_mask}


def make_plans(args, n, lengths):
    """Per repeat: the training batches of that epoch; and the inference batches."""
    import numpy as np

    from kemo.data.pipeline import batches, epoch_indices, length_buckets  # TensorFlow-free

    full = args.sequence_length
    buckets = length_buckets([int(x) for x in args.buckets.split(",") if x], full)
    bs = args.batch_size
    train_plans = []
    for epoch in range(args.repeats * args.epochs):
        order = epoch_indices(n, args.seed, epoch)
        rng = np.random.default_rng([args.seed, epoch, 1])
        plan = batches(order, lengths, bs, buckets, drop_remainder=True, rng=rng)
        train_plans.append(plan[:args.steps] if args.steps else plan)
    # Inference batches shortest text first, as kemo.prediction.batches.predict_probs cuts them.
    infer = batches(np.argsort(lengths, kind="stable"), lengths, bs, buckets,
                    drop_remainder=False)
    infer = infer[:args.steps] if args.steps else infer
    # The padded step: full batches of the longest texts, each padded to the full length.
    longest = np.argsort(-lengths, kind="stable")[:bs]
    padded = [(longest, full)] * args.padded_steps
    return buckets, train_plans, infer, padded


def model_flops(lengths_list, layers, d, ff, labels, train: bool) -> float:
    """Analytic FLOPs over real tokens (see the module docstring)."""
    import numpy as np

    t = np.concatenate([np.asarray(x, np.float64) for x in lengths_list])
    n = layers * (4 * d * d + 2 * d * ff) + d * labels
    if train:
        return float(6 * n * t.sum() + 12 * layers * d * (t ** 2).sum())
    return float(2 * n * t.sum() + 4 * layers * d * (t ** 2).sum())


# ---------------------------------------------------------------------------- kemo

class KemoSide:
    """kemo's classifier/loss/optimizer with a donated, AOT-compiled stateless step."""

    name = "kemo (Keras/JAX)"

    def __init__(self, args, shape, num_labels):
        import jax
        import keras
        import keras_hub

        from kemo.config import Config, TrainConfig
        from kemo.training.losses import MaskedBinaryCrossentropy
        from kemo.models.backbone_layers import use_fused_attention
        from kemo.models.classifier import build_classifier
        from kemo.training.metrics import make_metrics
        from kemo.training.optimizer import make_optimizer

        layers, d, heads, ff, vocab = shape
        keras.utils.set_random_seed(args.seed)
        if args.dtype == "bfloat16":
            keras.config.set_dtype_policy("mixed_bfloat16")
        backbone = keras_hub.models.BertBackbone(
            vocabulary_size=vocab, num_layers=layers, num_heads=heads, hidden_dim=d,
            intermediate_dim=ff, max_sequence_length=MAX_POSITIONS, dropout=args.dropout)
        if args.fused_attention:
            use_fused_attention(backbone)
        self.model = build_classifier(backbone, num_labels, args.pooling, dropout=args.dropout)
        self.optimizer = make_optimizer(Config(train=TrainConfig(
            schedule="constant", learning_rate=args.learning_rate,
            weight_decay=args.weight_decay)), total_steps=1)
        self.loss = MaskedBinaryCrossentropy()
        self.params = int(sum(math.prod(v.shape) for v in self.model.trainable_variables))
        self.batch_size = args.batch_size
        self.jax = jax
        self.loop = args.kemo_loop
        self.compile_s = {"train": 0.0, "infer": 0.0}
        self._train_exec, self._infer_exec = {}, {}
        if self.loop == "fit":  # as kemo.training.train compiles it
            labels = [f"label{j}" for j in range(num_labels)]
            self.model.compile(optimizer=self.optimizer, loss=self.loss,
                               metrics=make_metrics(labels, self.loss))
            return
        self.optimizer.build(self.model.trainable_variables)
        self.state = ([v.value for v in self.model.trainable_variables],
                      [v.value for v in self.model.non_trainable_variables],
                      [v.value for v in self.optimizer.variables])
        model, optimizer, loss_fn = self.model, self.optimizer, self.loss

        def compute_loss(tv, ntv, x, y):
            logits, ntv = model.stateless_call(tv, ntv, x, training=True)
            return loss_fn(y, logits), ntv

        grad_fn = jax.value_and_grad(compute_loss, has_aux=True)

        def train_step(state, x, y):
            tv, ntv, ov = state
            (loss, ntv), grads = grad_fn(tv, ntv, x, y)
            tv, ov = optimizer.stateless_apply(ov, grads, tv)
            return (tv, ntv, ov), loss

        def infer_step(tv, ntv, x):
            logits, _ = model.stateless_call(tv, ntv, x, training=False)
            return jax.nn.sigmoid(logits)

        self._train_jit = jax.jit(train_step, donate_argnums=0)
        self._infer_jit = jax.jit(infer_step)

    # Programs are compiled ahead of time, one per (rows, bucket) shape, and timed.
    def _spec(self, rows, length, num_labels=None):
        import numpy as np

        sds = self.jax.ShapeDtypeStruct
        x = {k: sds((rows, length), np.int32)
             for k in ("token_ids", "segment_ids", "padding_mask")}
        return x if num_labels is None else (x, sds((rows, num_labels), np.float32))

    def _train_program(self, length, num_labels):
        if length not in self._train_exec:
            t0 = time.perf_counter()
            x, y = self._spec(self.batch_size, length, num_labels)
            self._train_exec[length] = self._train_jit.lower(self.state, x, y).compile()
            self.compile_s["train"] += time.perf_counter() - t0
        return self._train_exec[length]

    def _infer_program(self, length):
        if length not in self._infer_exec:
            t0 = time.perf_counter()
            x = self._spec(self.batch_size, length)
            self._infer_exec[length] = self._infer_jit.lower(
                self.state[0], self.state[1], x).compile()
            self.compile_s["infer"] += time.perf_counter() - t0
        return self._infer_exec[length]

    def precompile(self, plans, infer_plan, num_labels, arrays=None, y=None):
        """Compile every bucket's programs before the clock starts (timed apart).

        `fit` compiles on first use: it runs here on one batch per bucket (a fit and a
        predict call), so its compile time includes one step per bucket."""
        if self.loop == "fit":
            for key, plan in (("train", [b for p in plans for b in p]), ("infer", infer_plan)):
                first = {}
                for idx, length in plan:
                    first.setdefault(length, (idx[:self.batch_size], length))
                t0 = time.perf_counter()
                if key == "train":
                    self._fit_epoch(list(first.values()), arrays, y)
                else:
                    self._fit_infer(list(first.values()), arrays)
                self.compile_s[key] = time.perf_counter() - t0
                (self._train_exec if key == "train" else self._infer_exec).update(first)
            return
        for length in sorted({b for plan in plans for _, b in plan}):
            self._train_program(length, num_labels)
        for length in sorted({b for _, b in infer_plan}):
            self._infer_program(length)

    def train_epoch(self, plan, arrays, y, pad_to_bucket=True):  # kemo always pads to it
        if self.loop == "fit":
            return self._fit_epoch(plan, arrays, y)
        state, losses = self.state, []
        for idx, length in plan:
            x = {k: v[idx, :length] for k, v in arrays.items()}
            state, loss = self._train_program(length, y.shape[1])(state, x, y[idx])
            losses.append(loss)  # read after the epoch: no host sync per step
        self.state = state
        self.jax.block_until_ready(state)
        return float(sum(float(v) for v in self.jax.device_get(losses)) / len(losses))

    def infer(self, plan, arrays):
        import numpy as np

        if self.loop == "fit":
            return self._fit_infer(plan, arrays)
        tv, ntv = self.state[0], self.state[1]
        outs = []
        for idx, length in plan:
            rows = len(idx)
            if rows < self.batch_size:  # the last batch: pad rows, keep one program
                idx = np.concatenate([idx, np.full(self.batch_size - rows, idx[-1])])
            x = {k: v[idx, :length] for k, v in arrays.items()}
            outs.append(self._infer_program(length)(tv, ntv, x)[:rows])
        return np.concatenate(self.jax.device_get(outs))

    # --kemo-loop fit: Keras' own trainer, fed kemo's batches through a PyDataset.
    def _dataset(self, plan, arrays, y):
        import keras

        class Batches(keras.utils.PyDataset):
            def __len__(self):
                return len(plan)

            def __getitem__(self, i):
                idx, length = plan[i]
                x = {k: v[idx, :length] for k, v in arrays.items()}
                return (x, y[idx]) if y is not None else (x,)

        return Batches()

    def _fit_epoch(self, plan, arrays, y):
        hist = self.model.fit(self._dataset(plan, arrays, y), epochs=1, verbose=0,
                              shuffle=False)
        return float(hist.history["loss"][-1])

    def _fit_infer(self, plan, arrays):
        import numpy as np

        # The last batch is padded to full rows, as kemo.data.pipeline.make_dataset does.
        full = [(np.resize(idx, self.batch_size), b) for idx, b in plan]
        probs = self.model.predict(self._dataset(full, arrays, None), verbose=0)
        keep = np.concatenate([np.arange(len(idx)) + k * self.batch_size
                               for k, (idx, _) in enumerate(plan)])
        return np.asarray(self.jax.nn.sigmoid(probs[keep]))


# --------------------------------------------------------------------------- torch

class TorchSide:
    """HF BertModel + the same head and loss, in a plain PyTorch loop."""

    name = "torch (HF BERT)"

    def __init__(self, args, shape, num_labels):
        import torch
        from transformers import BertConfig, BertModel

        layers, d, heads, ff, vocab = shape
        torch.manual_seed(args.seed)
        self.torch = torch
        self.device = torch.device("cuda" if args.device == "gpu" else "cpu")
        if args.device == "gpu" and args.dtype == "float32":
            torch.set_float32_matmul_precision("high")  # TF32, as JAX's default on GPU
        config = BertConfig(vocab_size=vocab, hidden_size=d, num_hidden_layers=layers,
                            num_attention_heads=heads, intermediate_size=ff,
                            hidden_act="gelu_pytorch_tanh",  # keras-hub's gelu_approximate
                            max_position_embeddings=MAX_POSITIONS, layer_norm_eps=1e-12,
                            hidden_dropout_prob=args.dropout,
                            attention_probs_dropout_prob=0.0 if args.fused_attention
                            else args.dropout)
        pooling, dropout = args.pooling, args.dropout

        class Classifier(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.bert = BertModel(config, add_pooling_layer=False)
                self.dropout = torch.nn.Dropout(dropout)
                self.logits = torch.nn.Linear(d, num_labels)

            def forward(self, ids, mask):
                seq = self.bert(input_ids=ids, attention_mask=mask).last_hidden_state
                if pooling == "cls":
                    pooled = seq[:, 0]
                else:
                    m = mask.unsqueeze(-1).to(seq.dtype)
                    pooled = (seq * m).sum(1) / m.sum(1).clamp(min=1.0)
                return self.logits(self.dropout(pooled)).float()

        self.model = Classifier().to(self.device)
        no_decay = [p for n, p in self.model.named_parameters()
                    if "bias" in n or "LayerNorm" in n]
        decay = [p for n, p in self.model.named_parameters()
                 if not ("bias" in n or "LayerNorm" in n)]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": args.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=args.learning_rate, eps=1e-7, foreach=True)  # Keras' epsilon
        self.params = int(sum(p.numel() for p in self.model.parameters()))
        self.autocast = {"device_type": self.device.type, "dtype": torch.bfloat16,
                         "enabled": args.dtype == "bfloat16"}
        self.compile_s = {"train": None, "infer": None}  # eager: nothing to compile

    def _batch(self, idx, arrays, length=None):
        length = length or int(arrays["padding_mask"][idx].sum(1).max())  # dynamic padding
        t = self.torch
        ids = t.from_numpy(arrays["token_ids"][idx, :length]).to(self.device, t.long)
        mask = t.from_numpy(arrays["padding_mask"][idx, :length]).to(self.device, t.long)
        return ids, mask

    def _loss(self, logits, y):
        f = self.torch.nn.functional
        known = (y >= 0).float()
        per = f.binary_cross_entropy_with_logits(logits, y.clamp(0, 1), reduction="none")
        return ((per * known).sum(-1) / known.sum(-1).clamp(min=1.0)).mean()

    def _sync(self):
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def train_epoch(self, plan, arrays, y, pad_to_bucket=False):
        t = self.torch
        self.model.train()
        losses = []
        for idx, bucket in plan:
            ids, mask = self._batch(idx, arrays, bucket if pad_to_bucket else None)
            target = t.from_numpy(y[idx]).to(self.device)
            with t.autocast(**self.autocast):
                logits = self.model(ids, mask)
            loss = self._loss(logits.float(), target)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.detach())
        self._sync()
        return float(t.stack(losses).mean())

    def infer(self, plan, arrays):
        t = self.torch
        self.model.eval()
        outs = []
        with t.no_grad(), t.autocast(**self.autocast):
            for idx, _ in plan:
                ids, mask = self._batch(idx, arrays)
                outs.append(t.sigmoid(self.model(ids, mask).float()))
        return t.cat(outs).cpu().numpy()


# ---------------------------------------------------------------------------- main

def peak_tflops(args):
    if args.peak_tflops > 0:
        return args.peak_tflops, "--peak-tflops"
    if args.device == "cpu":
        return None, "n/a on CPU"
    import jax

    kind = jax.devices()[0].device_kind
    for key, peaks in PEAK_TFLOPS.items():
        if key in kind.upper():
            return peaks[args.dtype], kind
    return None, f"unknown device {kind!r}: pass --peak-tflops"


def fmt(v, digits=2):
    if v is None:
        return "n/a"
    if isinstance(v, str):
        return v
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


def main(argv=None) -> dict:
    args = parse_args(argv)
    setup_environment(args)
    sys.path.insert(0, str(ROOT))

    import jax
    import keras
    import torch

    if args.compile_cache:
        jax.config.update("jax_compilation_cache_dir", str(Path(args.compile_cache).expanduser()))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if args.device == "gpu" and jax.devices()[0].platform != "gpu":
        raise SystemExit(f"--device gpu: JAX sees no GPU ({jax.devices()})")
    if args.device == "gpu" and not torch.cuda.is_available():
        raise SystemExit("--device gpu: PyTorch sees no CUDA device")
    threads = args.threads or os.cpu_count()
    if args.device == "cpu":
        torch.set_num_threads(threads)
    layers, d, heads, ff, vocab = shape = SHAPES[args.model]

    y, arrays, tokenize_s, tok_path = load_data(args)
    if args.save_tokens:  # a preparation step: the benchmark then runs with --tokens
        return {}
    n, num_labels = y.shape
    if n < args.batch_size:
        print(f"note: --batch-size {args.batch_size} lowered to the {n} texts")
        args.batch_size = n
    folded = int(arrays["token_ids"].max()) >= vocab
    if folded:  # e.g. XLM-R ids into mBERT's smaller table: the same compute, other rows
        arrays["token_ids"] %= vocab
    lengths = arrays["padding_mask"].sum(1).astype("int64")
    buckets, train_plans, infer_plan, padded_plan = make_plans(args, n, lengths)

    sides = {}
    t0 = time.perf_counter()
    if args.skip != "kemo":
        sides["kemo"] = KemoSide(args, shape, num_labels)
    build_kemo_s = time.perf_counter() - t0
    if args.skip != "torch":
        sides["torch"] = TorchSide(args, shape, num_labels)
    assert "tensorflow" not in sys.modules or sys.modules["tensorflow"] is None

    omp = f", OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}" if args.device == "cpu" else ""
    cpu = cpu_info()
    print(f"cpu: {describe_cpu(cpu)}")
    print(f"device: {args.device} ({jax.devices()[0].device_kind}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads{omp}; jax {jax.__version__}, "
          f"keras {keras.__version__}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}); "
          f"dtype {args.dtype}")
    print(f"model: {args.model} = {layers} layers, hidden {d}, {heads} heads, "
          f"intermediate {ff}, vocab {vocab}; {num_labels} labels, {args.pooling} pooling, "
          f"dropout {args.dropout}, attention dropout "
          f"{0.0 if args.fused_attention else args.dropout}; "
          + ", ".join(f"{k} {s.params:,} params" for k, s in sides.items()))
    print(f"data: {n} {args.languages} train texts, tokenised once in {tokenize_s:.2f}s "
          f"({tok_path}); mean {lengths.mean():.1f} tokens, max {lengths.max()}; "
          f"batch {args.batch_size}; kemo buckets {buckets}, torch pads to batch max"
          + (f"; token ids folded modulo the vocabulary ({vocab})" if folded else ""))
    print(f"plan: {len(train_plans[0])} train / {len(infer_plan)} inference batches per "
          f"epoch, {args.repeats} interleaved repeat(s) x {args.epochs} epoch(s)"
          + (f" (--steps {args.steps})" if args.steps else ""), flush=True)

    if "kemo" in sides:
        t0 = time.perf_counter()
        sides["kemo"].precompile(train_plans, infer_plan, num_labels, arrays, y)
        print(f"kemo: built in {build_kemo_s:.1f}s, compiled {len(sides['kemo']._train_exec)} "
              f"train + {len(sides['kemo']._infer_exec)} inference programs in "
              f"{time.perf_counter() - t0:.1f}s", flush=True)

    times = {k: {"train": [], "infer": []} for k in sides}
    loss0 = {}
    for r in range(args.repeats):
        order = list(sides) if r % 2 == 0 else list(sides)[::-1]
        for k in order:
            for e in range(args.epochs):
                plan = train_plans[r * args.epochs + e]
                t0 = time.perf_counter()
                loss = sides[k].train_epoch(plan, arrays, y)
                times[k]["train"].append(time.perf_counter() - t0)
                loss0.setdefault(k, loss)
            t0 = time.perf_counter()
            probs = sides[k].infer(infer_plan, arrays)
            times[k]["infer"].append(time.perf_counter() - t0)
            assert probs.shape == (sum(len(i) for i, _ in infer_plan), num_labels)
            print(f"repeat {r + 1}: {k:5s} train epoch {times[k]['train'][-1]:.2f}s "
                  f"(loss {loss:.4f}), inference {times[k]['infer'][-1]:.2f}s", flush=True)

    padded_s = {}  # seconds per padded step
    for k in sides if padded_plan else ():
        def timed(plan):
            t0 = time.perf_counter()
            sides[k].train_epoch(plan, arrays, y, pad_to_bucket=True)
            return time.perf_counter() - t0

        timed(padded_plan[:1])  # warm-up: compiles the full length if no epoch did
        one, many = timed(padded_plan[:1]), timed(padded_plan)
        # Per step: a call's fixed cost (fit's set-up, the final sync) cancels out.
        per_step = (many - one) / (len(padded_plan) - 1) if len(padded_plan) > 1 else many
        print(f"padded step: {k:5s} {len(padded_plan)} steps of {args.batch_size} x "
              f"{args.sequence_length} in {many:.3f}s, 1 step in {one:.3f}s: "
              + (f"{per_step * 1e3:.1f} ms per step" if per_step > 0 else
                 "too short to tell apart from the call's fixed cost (raise --padded-steps)"),
              flush=True)
        if per_step > 0:
            padded_s[k] = per_step

    train_rows = sum(len(i) for i, _ in train_plans[0])
    infer_rows = sum(len(i) for i, _ in infer_plan)
    real_train = [lengths[i] for plan in train_plans for i, _ in plan]
    # Epochs differ a little (the dropped remainder, or --steps): the mean epoch's FLOPs.
    flops_epochs = [model_flops([lengths[i] for i, _ in plan], layers, d, ff, num_labels,
                                train=True) for plan in train_plans]
    flops_train = statistics.mean(flops_epochs)
    flops_infer = model_flops([lengths[i] for i, _ in infer_plan], layers, d, ff,
                              num_labels, train=False)

    def padded(plan, side):  # tokens a side computes: kemo pads to the bucket, torch to max
        return sum(len(i) * (b if side == "kemo" else int(lengths[i].max())) for i, b in plan)

    real_tokens = float(sum(x.sum() for x in real_train))
    real_infer = float(sum(lengths[i].sum() for i, _ in infer_plan))
    peak, peak_src = peak_tflops(args)
    flops_padded = model_flops([[args.sequence_length] * args.batch_size], layers, d, ff,
                               num_labels, train=True)  # one padded step

    res = {}
    for k, s in sides.items():
        tr = statistics.median(times[k]["train"])
        inf = statistics.median(times[k]["infer"])
        comp = s.compile_s
        res[k] = {
            "train_samples_per_s": train_rows / tr,
            "train_epoch_s": tr,
            "train_compile_s": comp["train"],
            "train_epoch_e2e_s": tr + (comp["train"] or 0.0),
            "train_run_e2e_s": args.epochs * tr + (comp["train"] or 0.0),
            "infer_samples_per_s": infer_rows / inf,
            "infer_pass_s": inf,
            "infer_compile_s": comp["infer"],
            "infer_pass_e2e_s": inf + (comp["infer"] or 0.0),
            "train_tflops": flops_train / tr / 1e12,
            "infer_tflops": flops_infer / inf / 1e12,
            "train_mfu_pct": None,
            "infer_mfu_pct": None if peak is None else 100 * flops_infer / inf / 1e12 / peak,
            "train_computed_over_real_tokens":
                sum(padded(p, k) for p in train_plans) / real_tokens,
            "infer_computed_over_real_tokens": padded(infer_plan, k) / real_infer,
            "padded_step_samples_per_s":
                args.batch_size / padded_s[k] if k in padded_s else None,
            "padded_step_tflops": flops_padded / padded_s[k] / 1e12 if k in padded_s else None,
            "padded_step_mfu_pct": None,
            "first_epoch_loss": loss0[k],
            "peak_tflops": peak,
            "train_epoch_all_s": times[k]["train"],
            "infer_pass_all_s": times[k]["infer"],
        }
    for r in res.values():
        if peak is not None:
            r["train_mfu_pct"] = 100 * r["train_tflops"] / peak
            if r["padded_step_tflops"] is not None:
                r["padded_step_mfu_pct"] = 100 * r["padded_step_tflops"] / peak
    rows = [
        ("train samples/s", "train_samples_per_s"),
        ("train epoch, median (s)", "train_epoch_s"),
        ("train compile (s)", "train_compile_s"),
        ("train epoch e2e incl. compile (s)", "train_epoch_e2e_s"),
        (f"train run, {args.epochs} epoch(s) + compile (s)", "train_run_e2e_s"),
        ("inference samples/s", "infer_samples_per_s"),
        ("inference pass, median (s)", "infer_pass_s"),
        ("inference compile (s)", "infer_compile_s"),
        ("inference pass e2e incl. compile (s)", "infer_pass_e2e_s"),
        ("train TFLOP/s (model FLOPs)", "train_tflops"),
        ("inference TFLOP/s", "infer_tflops"),
        ("train MFU (%)", "train_mfu_pct"),
        (f"padded step {args.batch_size}x{args.sequence_length} samples/s",
         "padded_step_samples_per_s"),
        ("padded step TFLOP/s (padded FLOPs)", "padded_step_tflops"),
        ("padded step MFU (%)", "padded_step_mfu_pct"),
        ("inference MFU (%)", "infer_mfu_pct"),
        ("train computed / real tokens", "train_computed_over_real_tokens"),
        ("inference computed / real tokens", "infer_computed_over_real_tokens"),
        ("mean loss, first epoch", "first_epoch_loss"),
    ]
    names = list(sides)
    head = f"{'':38s}" + "".join(f"{sides[k].name:>18s}" for k in names)
    if len(names) == 2:
        head += f"{'kemo/torch':>12s}"
    print()
    print(f"{args.model}, {args.device}, {args.dtype}, batch {args.batch_size}: "
          f"{train_rows} train rows/epoch, {infer_rows} inference rows; "
          f"medians of {args.repeats * args.epochs} interleaved epochs")
    print(head)
    print("-" * len(head))
    for label, key in rows:
        vals = [res[k][key] for k in names]
        line = f"{label:38s}" + "".join(f"{fmt(v, 4 if 'tflops' in key else 2):>18s}"
                                         for v in vals)
        if len(names) == 2:
            a, b = vals
            ratio = a / b if (a is not None and b) else None
            line += f"{fmt(ratio, 3):>12s}"
        print(line)
    print("-" * len(head))
    print("kemo/torch > 1 is kemo faster for samples/s and TFLOP/s, slower for times (s). "
          f"Peak for MFU: {fmt(peak)} TFLOP/s ({peak_src}).")
    print(f"FLOPs over real tokens: train 6*N*T + 12*L*d*T^2, inference 2*N*T + 4*L*d*T^2 "
          f"per sequence, N = L*(4d^2 + 2*d*f) + d*labels = "
          f"{layers * (4 * d * d + 2 * d * ff) + d * num_labels:,}; "
          f"train epoch {flops_train / 1e12:.3f} TFLOP, inference pass "
          f"{flops_infer / 1e12:.3f} TFLOP")
    tf_loaded = sys.modules.get("tensorflow") is not None
    out = {"args": vars(args), "cpu": cpu, "results": res, "n_train_rows": train_rows,
           "tensorflow_loaded": tf_loaded,
           "n_infer_rows": infer_rows, "tokenize_s": tokenize_s, "peak_tflops": peak}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
