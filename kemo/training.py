"""Compile-and-fit orchestration: config -> data -> model -> fit -> thresholds -> report.

`train(cfg, data_dir, run_dir)` validates every input before it creates the run
directory, then writes there: `config.toml` (the resolved config), `history.csv` and
`history.json` (per-epoch loss, per-label loss and macro-F1, train and validation),
`label_distribution.json`, `thresholds.json`, `report.json`, `predictions_val.csv`,
`predictions_dev.csv`, `predictions/dev/` (the official `pred_<lang>.csv` layout plus
`probs_<lang>.csv`: `kemo evaluate <run_dir>/predictions/dev --split dev` scores them;
see `kemo.split_predictions`), `model.keras`, `preprocessor/` (a keras-hub preset of the
tokeniser) and `tensorboard/` (event files; see `kemo.monitor`).

Example:
    cfg = load_config("configs/tiny.toml")
    result = train(cfg, data_dir="../shared/data/brighter/track_a", run_dir="runs/tiny")
    result["report"]["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"]
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import keras
import numpy as np

from kemo.checkpoint import (
    ResumableEarlyStopping, RunCheckpoint, load_checkpoint, remove_checkpoints,
    save_model_without_optimizer,
)
from kemo.config import Config, dump_config
from kemo.data.brighter import Examples
from kemo.data.splits import load_data
from kemo.data.numpy_batches import input_batches
from kemo.data.pipeline import (
    BatchPlan, epoch_indices, label_distribution, language_shares, language_weights,
    length_buckets, sampling_weights, steps_per_epoch, token_lengths, tokenize_splits,
)
from kemo.data.token_cache import MANIFEST, RUN_SPLITS, TokenCache, expected_manifest
from kemo.errors import InputError
from kemo.interrupt import ReraiseInterrupt
from kemo.machine import cpu_info, describe_cpu
from kemo.losses import inverse_frequency_alpha, make_loss
from kemo.metrics import LabelLoss, MacroF1
from kemo.models import build_classifier, load_backbone, load_preprocessor
from kemo.models.backbones import (
    freeze_lower_layers, save_preprocessor, token_embedding, use_fused_attention,
)
from kemo.models.vocab_prune import prune_vocabulary, save_keep
from kemo.monitor import monitor_callbacks
from kemo import multiprocess
from kemo.nan_guard import StopOnNanLoss
from kemo.predict import predict_probs
from kemo.report import format_console_report, full_report
from kemo.run import layout as L
from kemo.run.manifest import write_manifest
from kemo.run_lock import RunLock, check_unlocked
from kemo.split_predictions import write_split_predictions, write_split_submission
from kemo.thresholds import UNTUNED_THRESHOLD, tune_on_validation
from kemo.validation import LANGUAGE_MEAN_KEY, LanguageValidation, monitor_key


def make_optimizer(cfg: Config, total_steps: int):
    """AdamW with linear warmup + cosine decay; no weight decay on biases/LayerNorm."""
    t = cfg.train
    if t.schedule == "cosine":
        warmup = int(round(t.warmup_fraction * total_steps))
        lr = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else t.learning_rate,
            decay_steps=max(total_steps - warmup, 1),
            warmup_target=t.learning_rate if warmup else None,
            warmup_steps=warmup,
        )
    else:
        lr = t.learning_rate
    opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=t.weight_decay)
    opt.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return opt


def make_metrics(label_names, loss) -> list:
    """What `fit` logs each epoch: macro-F1 at the untuned threshold (`p >= 0.5`, the
    run's decision rule; early stopping reads its `val_macro_f1`) and each label's loss
    (`loss_<label>`)."""
    return [MacroF1(len(label_names), threshold=UNTUNED_THRESHOLD)] + [
        LabelLoss(j, loss=loss, name=f"loss_{n}") for j, n in enumerate(label_names)]


class JsonHistory(keras.callbacks.Callback):
    """Writes the per-epoch logs to `history.json` after every epoch (`write=False`:
    only keeps them in `epochs`, as a process other than a run's writer does)."""

    def __init__(self, path, write: bool = True):
        super().__init__()
        self.path, self.write = Path(path), write
        self.epochs = json.loads(self.path.read_text()) if self.path.exists() else []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs = [e for e in self.epochs if e["epoch"] < epoch + 1]
        self.epochs.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        if self.write:
            self.path.write_text(json.dumps(self.epochs, indent=1))


def _format_distribution(names, before, after) -> str:
    rows = [f"{'label':<10}{'before':>9}{'after':>9}"]
    rows += [f"{n:<10}{b:>9.3f}{a:>9.3f}" for n, b, a in zip(names, before, after)]
    return "\n".join(rows)


def _sampling_weights(cfg: Config, train_ex: Examples):
    """Per-row draw probabilities: label weighting (`data.sampling_strength`) times
    language tempering (`data.language_temperature`); None: a plain permutation."""
    weights = None
    if cfg.data.sampling_strength > 0:
        weights = sampling_weights(train_ex.labels, train_ex.mask, cfg.data.sampling_strength)
    return language_weights(train_ex.langs, cfg.data.language_temperature, weights)


def _format_languages(langs, weights) -> str:
    n = len(langs)
    before, after = language_shares(langs), language_shares(langs, weights)
    rows = [f"{'language':<10}{'rows':>8}{'sampled':>9}"]
    rows += [f"{lang:<10}{before[lang] * n:>8.0f}{after[lang] * n:>9.0f}" for lang in sorted(before)]
    return "\n".join(rows)


def set_distribution(cfg: Config) -> None:
    """Data parallelism over all local devices (and the devices of every process, when
    this is one of several: `kemo.multiprocess`) with `train.distribution =
    "data_parallel"`: weights replicated, each batch sharded over a one-axis device mesh."""
    several = multiprocess.requested()
    if cfg.train.distribution == "none" and not several:
        keras.distribution.set_distribution(None)
        return
    if keras.backend.backend() != "jax":
        raise InputError(f"config key 'train.distribution': {cfg.train.distribution} needs the "
                         f"JAX backend (got {keras.backend.backend()})")
    if several:
        if cfg.train.distribution == "none":
            raise InputError("config key 'train.distribution': a run of several processes needs "
                             '"data_parallel" (--set train.distribution=\'"data_parallel"\')')
        multiprocess.initialize()  # one line: which process, how many, how many devices
    devices = keras.distribution.list_devices()
    if cfg.train.batch_size % len(devices):
        raise InputError(f"config key 'train.batch_size': {cfg.train.batch_size} does not split "
                         f"evenly over {len(devices)} devices")
    # Several processes: each feeds its own rows of every global batch (`batch_arrays`).
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=devices, auto_shard_dataset=not multiprocess.active()))
    if multiprocess.is_writer():
        print(f"data parallel over {len(devices)} devices: {devices[0]} ...")


def _make_loss(cfg: Config, train_ex: Examples):
    alpha = None
    if cfg.loss.name == "focal":
        if cfg.loss.alpha == "inverse_frequency":
            alpha = inverse_frequency_alpha(train_ex.labels, train_ex.mask)
        elif isinstance(cfg.loss.alpha, list):
            if len(cfg.loss.alpha) != len(train_ex.label_names):
                raise InputError(
                    f"config key 'loss.alpha': expected {len(train_ex.label_names)} values "
                    f"({', '.join(train_ex.label_names)}), got {len(cfg.loss.alpha)}")
            alpha = cfg.loss.alpha
    return make_loss(cfg.loss.name, cfg.loss.gamma, alpha)


def _open_run_dir(run_dir: Path, cfg: Config, resume: bool, lock: ExitStack) -> None:
    """Check (or create) `run_dir` and lock it for this process before it is read."""
    if resume:
        if not (run_dir / L.CONFIG).is_file():
            raise InputError(f"--resume {run_dir}: not a kemo run directory (no config.toml)")
        lock.enter_context(RunLock(run_dir))
        if (run_dir / L.REPORT).is_file():
            raise InputError(f"--resume {run_dir}: this run already finished (report.json exists)")
        return
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError(f"run directory {run_dir}: is a file, not a folder (give --run-dir "
                         "a new folder)")
    if run_dir.exists() and any(run_dir.iterdir()):
        check_unlocked(run_dir)  # a run in progress: name its process
        raise InputError(f"run directory {run_dir}: exists and is not empty (use a new --run-dir, "
                         f"or --resume {run_dir} to continue it)")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"run directory {run_dir}: not writable ({e.strerror})") from None
    lock.enter_context(RunLock(run_dir))  # the first file in it; proves it writable


def _check_resumable_history(run_dir: Path, state: dict | None, label_names,
                             monitor: str = "val_macro_f1") -> None:
    """On resume: `label_distribution.json` and `history.json` (read back by the run)
    are valid and match the data and the checkpoint."""
    from kemo.run_files import label_names as check_labels, read_history
    from kemo.runs import read_label_distribution

    path = run_dir / L.LABEL_DISTRIBUTION
    if path.exists():
        check_labels(read_label_distribution(path)["labels"], path, "labels", label_names)
    if (run_dir / L.HISTORY_JSON).exists():
        epochs = read_history(run_dir / L.HISTORY_JSON)
        done = state["epoch"] if state else 0
        if len(epochs) < done:
            raise InputError(f"{run_dir / L.HISTORY_JSON}: {len(epochs)} epochs, but the "
                             f"checkpoint is after epoch {done}")
        es = (state or {}).get("early_stopping") or {}
        if es.get("best") is not None:  # early stopping's best is the monitor logged then
            logged = epochs[es["best_epoch"]].get(monitor)
            try:
                with np.errstate(over="ignore"):
                    same = np.float32(logged) == np.float32(es["best"])
            except (TypeError, ValueError, OverflowError):
                same = False
            if logged is None or not same:
                state_json = run_dir / L.CHECKPOINTS / f"epoch-{done:04d}" / "state.json"
                raise InputError(
                    f"{state_json}, field 'early_stopping.best': {es['best']}, but "
                    f"{run_dir / L.HISTORY_JSON} logs {monitor} {logged} for epoch "
                    f"{es['best_epoch'] + 1} (one of the two files is damaged)")
    if (run_dir / L.HISTORY_CSV).exists():  # CSVLogger appends to it
        try:
            header = (run_dir / L.HISTORY_CSV).read_bytes().decode("utf-8").split("\n", 1)[0]
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"{run_dir / L.HISTORY_CSV}: cannot read ({e})") from None
        if header and not header.startswith("epoch,"):
            raise InputError(f"{run_dir / L.HISTORY_CSV}, header: expected 'epoch,...', got "
                             f"{header[:40]!r}")


def train(cfg: Config, data_dir=None, run_dir=None, verbose: int = 2,
          resume: bool = False, tokens=None, keep_checkpoints: bool = False,
          announce: str = "") -> dict:
    """Run one experiment end to end; returns {"report", "history", "run_dir"}.

    `announce` (what the caller is doing: config, preset, data) is printed once every
    input has been checked, so bad input prints nothing but its one error.

    The tokens of its splits go to `<run_dir>/tokens/` (a `kemo.data.token_cache`).
    With `tokens` (a cache `kemo tokenize` wrote for this config), or resuming a run
    that wrote its own, nothing is tokenised and the input path is numpy
    (`kemo.data.numpy_batches`): TensorFlow is not needed.

    With `resume=True`, `run_dir` is a run that was interrupted: training continues
    from its last checkpoint (see `kemo.checkpoint`) and ends as the uninterrupted
    run would have. One writer per run: the process holds `kemo.run_lock.RunLock`
    on `run_dir` from its creation (or, resuming, before it is read) to the end.

    The data root: `data_dir`, else $KEMO_DATA_DIR, else `data.data_dir`
    (`kemo.data.brighter.resolve_data_dir`); `config.toml` keeps the config's own
    `data.data_dir`, report.json's `meta.data_dir` says where the data was read.
    A finished run is lean: `model.keras` without optimizer state, and `checkpoints/`
    deleted once `report.json` is written (kept with `keep_checkpoints`).
    """
    with ExitStack() as lock:
        return _train(cfg, data_dir, run_dir, verbose, resume, lock, tokens, keep_checkpoints,
                      announce)


def _open_token_cache(tokens, run_dir: Path, resume: bool, expect: dict):
    """The token cache to train from: `tokens` (`train --tokens`) or, resuming, the run's
    own `tokens/`; None: tokenise. Refused if written for other settings or data."""
    if tokens:
        return TokenCache.load(tokens, expect)
    if resume and (run_dir / L.TOKENS / MANIFEST).is_file():
        return TokenCache.load(run_dir / L.TOKENS, expect)
    return None


def _train(cfg: Config, data_dir, run_dir, verbose: int, resume: bool, lock: ExitStack,
           tokens=None, keep_checkpoints: bool = False, announce: str = "") -> dict:
    started = time.time()
    keras.utils.set_random_seed(cfg.train.seed)
    keras.config.set_dtype_policy(cfg.train.dtype_policy)
    set_distribution(cfg)
    out = sys.stdout
    if not multiprocess.is_writer():  # process 0 tells the run; the others say when done
        lock.enter_context(contextlib.redirect_stdout(lock.enter_context(open(os.devnull, "w"))))

    # Everything that can fail on user input happens before the run dir is written.
    splits = load_data(cfg, data_dir)  # config.toml keeps data.data_dir as configured
    train_ex, val_ex = splits.train, splits.val
    label_names = train_ex.label_names
    loss = _make_loss(cfg, train_ex)
    named = {n: ex for n, ex in zip(RUN_SPLITS, (train_ex, val_ex, splits.dev)) if ex is not None}
    expect = expected_manifest(cfg, splits.root)
    cache = _open_token_cache(tokens, Path(run_dir), resume, expect)
    arrays = {n: cache.arrays(n, ex) for n, ex in named.items()} if cache else None
    preprocessor = (cache.load_preprocessor() if cache
                    else load_preprocessor(cfg.model, train_texts=train_ex.texts))
    t_load = time.time()
    backbone = load_backbone(cfg.model, preprocessor.tokenizer.vocabulary_size())
    load_seconds = time.time() - t_load
    if cfg.model.prune_vocabulary:  # only the token rows the run's texts use
        preprocessor, backbone, arrays = prune_vocabulary(
            cfg, splits.root, preprocessor, backbone, arrays, Path(run_dir) if resume else None)
    if cfg.model.freeze_token_embeddings:
        token_embedding(backbone).trainable = False  # nested in XLM-R's `embeddings`
    freeze_lower_layers(backbone, cfg.model.freeze_layers)
    if cfg.model.fused_attention:
        use_fused_attention(backbone)
    model = build_classifier(backbone, len(label_names), cfg.model.pooling, cfg.model.dropout)
    monitor = monitor_key(train_ex.langs.tolist())  # several languages: their mean F1
    steps = steps_per_epoch(len(train_ex), cfg.train.batch_size)
    model.compile(optimizer=make_optimizer(cfg, steps * cfg.train.epochs), loss=loss,
                  metrics=make_metrics(label_names, loss))
    run_dir = Path(run_dir)
    writer = multiprocess.is_writer()  # several processes: only process 0 writes run_dir
    error = None
    try:
        if writer:
            _open_run_dir(run_dir, cfg, resume, lock)
    except InputError as e:
        error = str(e)
    multiprocess.broadcast_error(error)  # process 0's verdict, on every process
    state = None
    if resume:  # the whole checkpoint and history are checked before anything is written
        state = load_checkpoint(run_dir, model, cfg.train.epochs,
                                cfg.train.early_stopping_patience > 0)
        _check_resumable_history(run_dir, state, label_names, monitor)
    elif writer:
        (run_dir / L.CONFIG).write_text(dump_config(cfg))
        if cfg.model.prune_vocabulary:  # --resume rebuilds the same pruned shapes
            save_keep(run_dir, preprocessor)
    if writer:
        write_manifest(run_dir, "train", resumed=resume)  # a run from before run.json gets one

    if announce:
        print(announce)
    print(f"backbone: {cfg.model.preset or 'random weights'} loaded in {load_seconds:.1f}s "
          f"({backbone.count_params() / 1e6:.1f}M weights)")
    print(f"data: {len(train_ex)} train, {len(val_ex)} validation (from train), "
          f"{len(splits.dev) if splits.dev is not None else 0} dev rows; "
          f"languages {', '.join(cfg.data.languages)}; labels {', '.join(label_names)}")
    t0 = time.time()
    if cache:
        print(f"tokens from {cache.path} (sequence_length {cfg.model.sequence_length})")
    else:
        arrays = tokenize_splits({name: ex.texts for name, ex in named.items()}, preprocessor)
        print(f"tokenised in {time.time() - t0:.1f}s (sequence_length {cfg.model.sequence_length})")
    if writer and (cache is None or cache.path != run_dir / L.TOKENS):  # --resume reads them
        TokenCache.write(run_dir / L.TOKENS, named, arrays, preprocessor, expect,
                         cache.manifest["tokenize_seconds"] if cache else time.time() - t0)
    tf_data = False if cache else None  # from a cache: the numpy input path, no TensorFlow

    weights = _sampling_weights(cfg, train_ex)
    before = label_distribution(train_ex.labels, train_ex.mask)
    after = label_distribution(train_ex.labels, train_ex.mask,
                               epoch_indices(len(train_ex), cfg.train.seed, 0, weights))
    print("label distribution (positive rate), before and after sampling "
          f"(strength {cfg.data.sampling_strength}):")
    print(_format_distribution(label_names, before, after))
    if monitor == LANGUAGE_MEAN_KEY:  # several languages
        print(f"rows per language and epoch, before and after sampling (language "
              f"temperature {cfg.data.language_temperature}):")
        print(_format_languages(train_ex.langs, weights))
    if writer and not (resume and (run_dir / L.LABEL_DISTRIBUTION).exists()):
        (run_dir / L.LABEL_DISTRIBUTION).write_text(json.dumps(
            {"labels": list(label_names), "before": before.tolist(), "after": after.tolist(),
             "sampling_strength": cfg.data.sampling_strength}, indent=1))

    start_epoch = state["epoch"] if state else 0
    if resume:
        print(f"resuming {run_dir} after epoch {start_epoch}" if state
              else f"resuming {run_dir}: no checkpoint yet, starting from epoch 1")

    buckets = cfg.data.length_buckets
    part = multiprocess.part()  # several processes: each feeds its rows of every batch
    train_ds = input_batches(arrays["train"], train_ex.y, cfg.train.batch_size, tf_data=tf_data,
                             seed=cfg.train.seed, epochs=cfg.train.epochs,
                             start_epoch=start_epoch, weights=weights, buckets=buckets, part=part)
    json_history = JsonHistory(run_dir / L.HISTORY_JSON, write=writer)
    callbacks = [keras.callbacks.CSVLogger(str(run_dir / L.HISTORY_CSV), append=resume),
                 json_history] if writer else [json_history]
    if monitor == LANGUAGE_MEAN_KEY:  # one validation pass, before what reads its logs
        callbacks.insert(0, LanguageValidation(arrays["val"], val_ex, loss,
                                               make_metrics(label_names, loss),
                                               cfg.train.batch_size, buckets, tf_data))
        val_ds = None
    else:  # Keras' own validation pass
        val_ds = input_batches(arrays["val"], val_ex.y, cfg.train.batch_size, tf_data=tf_data,
                               buckets=buckets, shuffle=False, part=part)
    early_stopping = None
    if cfg.train.early_stopping_patience > 0:
        restore = None
        if state and "early_stopping" in state:
            restore = {**state["early_stopping"], "best_weights": state.get("best_weights")}
        early_stopping = ResumableEarlyStopping(
            monitor=monitor, mode="max", patience=cfg.train.early_stopping_patience,
            restore_best_weights=True, verbose=1, restore=restore)
        callbacks.append(early_stopping)
    callbacks.insert(0, StopOnNanLoss(run_dir, cfg.train.learning_rate))  # before any record
    if writer:
        callbacks.append(RunCheckpoint(run_dir, early_stopping))
    callbacks.append(ReraiseInterrupt())  # after the checkpoint: an ended epoch is saved
    notes_plan = BatchPlan(token_lengths(arrays["train"]), cfg.train.batch_size,
                           length_buckets(buckets, arrays["train"]["token_ids"].shape[1]),
                           cfg.train.seed, cfg.train.epochs, start_epoch, weights)
    if writer:
        callbacks += monitor_callbacks(  # progress bar, compile notes per bucket, TensorBoard
            run_dir, verbose, bucket_of_step=lambda epoch, batch: notes_plan[
                (epoch - start_epoch) * notes_plan.steps + batch][1])
    else:
        verbose = 0  # process 0 shows the progress
    stopped_early = bool(early_stopping and state
                         and state["early_stopping"]["wait"] >= cfg.train.early_stopping_patience)
    t0 = time.time()
    if start_epoch < cfg.train.epochs and not stopped_early:
        try:
            model.fit(train_ds, validation_data=val_ds, epochs=cfg.train.epochs,
                      initial_epoch=start_epoch, steps_per_epoch=steps, callbacks=callbacks,
                      verbose=verbose, shuffle=False)
        except KeyboardInterrupt:
            if writer:
                print(f"\ninterrupted: continue with --resume {run_dir}", file=sys.stderr)
            raise
    elif state and state.get("best_weights") is not None:
        # Training had ended before the kill: early stopping's best weights, as at its end.
        model.set_weights(state["best_weights"])
    fit_seconds = time.time() - t0
    history = json_history.epochs  # what history.json holds
    epochs_run = len(history)
    best_epoch = None  # the epoch whose weights early stopping restored (1-based)
    if early_stopping is not None and getattr(early_stopping, "best_weights", None) is not None:
        best_epoch = int(early_stopping.best_epoch) + 1
    elif early_stopping is not None and state and state.get("early_stopping"):
        best_epoch = int(state["early_stopping"]["best_epoch"]) + 1

    probs = {}
    for name, arr in arrays.items():
        if name != "train":  # a line before each wait: predicting compiles too
            print(f"evaluating {'validation' if name == 'val' else name} "
                  f"({len(named[name])} rows) ...", end=" ", flush=True)
            t1 = time.time()
            probs[name] = predict_probs(model, arr, cfg.train.batch_size, buckets, tf_data)
            print(f"{time.time() - t1:.1f}s", flush=True)
    search, per_lang = tune_on_validation(probs["val"], val_ex, cfg.thresholds.tune)
    decides = "threshold_0.5" if not cfg.thresholds.tune else (
        "per_language_thresholds" if cfg.thresholds.per_language else "tuned_thresholds")
    if cfg.thresholds.per_language and not cfg.thresholds.tune:
        print("note: thresholds.per_language needs thresholds.tune = true: the run decides "
              "at 0.5", file=sys.stderr)
    decide = per_lang if decides == "per_language_thresholds" else search
    report = {"validation": full_report(val_ex, probs["val"], search, per_lang)}
    if splits.dev is not None:
        report["dev"] = full_report(splits.dev, probs["dev"], search, per_lang)
    if writer:
        decide.save(run_dir / L.THRESHOLDS)
        write_split_predictions(run_dir / L.PREDICTIONS_VAL, val_ex, probs["val"], decide)
    if writer and splits.dev is not None:
        write_split_predictions(run_dir / L.PREDICTIONS_DEV, splits.dev, probs["dev"], decide)
        write_split_submission(run_dir / L.PREDICTIONS / "dev", splits.dev, probs["dev"], decide)
    report["meta"] = {"epochs_run": epochs_run, "best_epoch_restored": best_epoch,
                      "fit_seconds": round(fit_seconds, 1),
                      "total_seconds": round(time.time() - started, 1),
                      "backend": keras.backend.backend(),
                      "decides_with": decides, "per_language_thresholds": per_lang.per_language,
                      "train_rows": len(train_ex), "val_rows": len(val_ex),
                      "resumed_after_epoch": start_epoch if resume else None,
                      "data_dir": str(splits.root.resolve()), "cpu": cpu_info(),
                      "processes": multiprocess.process_count()}
    if writer:
        save_model_without_optimizer(model, run_dir / L.MODEL)  # no AdamW moments
        save_preprocessor(preprocessor, backbone, run_dir / L.PREPROCESSOR)
        # report.json last: its presence marks a finished run.
        (run_dir / L.REPORT).write_text(json.dumps(report, indent=1))
        if not keep_checkpoints:  # for resuming only; a finished run is not resumed
            remove_checkpoints(run_dir)
        write_manifest(run_dir, "train", finished=True)  # the end time and the files kept
    multiprocess.barrier("kemo-train-written")  # the others end once the run is written
    if not writer:
        print(f"process {multiprocess.process_index()}: done (process 0 wrote {run_dir})",
              file=out)
        return {"report": report, "history": history, "run_dir": run_dir}

    print()
    print(format_console_report(report))
    best = f", best epoch {best_epoch} restored" if best_epoch else ""
    print(f"\ntrained {epochs_run} epochs{best} (fit {fit_seconds:.0f}s; "
          f"{describe_cpu(report['meta']['cpu'])})")
    return {"report": report, "history": history, "run_dir": run_dir}

