"""Compile-and-fit orchestration: config -> data -> model -> fit -> thresholds -> report.

`train(cfg, data_dir, run_dir)` validates every input before it creates the run
directory, then writes there: `config.toml` (the resolved config), `history.csv` and
`history.json` (per-epoch loss, per-label loss and macro-F1, train and validation),
`label_distribution.json`, `thresholds.json`, `report.json`, `predictions_val.csv`,
`predictions_dev.csv`, `predictions/dev/` (the official `pred_<lang>.csv` layout plus
`probs_<lang>.csv`: `kemo evaluate <run_dir>/predictions/dev --split dev` scores them;
see `kemo.prediction.split_files`), `model.keras`, `preprocessor/` (a keras-hub preset of the
tokeniser) and `tensorboard/` (event files; see `kemo.training.monitor`).

Example:
    cfg = load_config("configs/tiny.toml")
    result = train(cfg, data_dir="../shared/data/brighter/track_a", run_dir="runs/tiny")
    result["report"]["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"]
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from kemo.training.checkpoint import (
    ResumableEarlyStopping, ResumeInsideEpoch, RunCheckpoint, load_checkpoint,
    remove_checkpoints, save_model_without_optimizer,
)
from kemo.config import Config, dump_config
from kemo.data.brighter import Examples
from kemo.data.splits import load_data, validation_note
from kemo.data.numpy_batches import input_batches
from kemo.data.pipeline import (
    BatchPlan, batch_arrays, epoch_indices, label_distribution, language_shares, language_weights,
    length_buckets, sampling_weights, steps_per_epoch, token_lengths, tokenize_splits,
)
from kemo.data.token_cache import MANIFEST, RUN_SPLITS, TokenCache, expected_manifest
from kemo.errors import InputError
from kemo.interrupt import ReraiseInterrupt
from kemo.machine import cpu_info
from kemo.training.losses import inverse_frequency_alpha, make_loss
from kemo.training.intensity_losses import make_intensity_loss
from kemo.training.metrics import LabelLoss, MacroF1, PearsonR
from kemo.models import build_classifier, load_backbone, load_preprocessor
from kemo.models.intensity_heads import build_intensity_model, intensity_scores
from kemo.models.backbone_layers import freeze_lower_layers, token_embedding, use_fused_attention
from kemo.models.backbones import check_sequence_length, save_preprocessor
from kemo.models.transfer import copy_head, find_backbone
from kemo.models.vocab_prune import prune_vocabulary, save_keep
from kemo.training.monitor import monitor_callbacks
from kemo import multiprocess
from kemo.log import warnings_only
from kemo.training.nan_guard import StopOnNanLoss
from kemo.prediction.batches import predict_logits, predict_probs
from kemo.run import layout as L
from kemo.evaluation.finish import finish, write_decisions
from kemo.evaluation.intensity_finish import finish_intensity, write_intensity_decisions
from kemo.run.report_file import ABSENT, CUT_POINTS, INTENSITY, Meta, Report
from kemo.run.manifest import write_manifest
from kemo.run.lock import RunLock
from kemo.run.verdict import check_new_run_dir, check_resumable, clear_run_dir
from kemo.prediction.thresholds import UNTUNED_THRESHOLD
from kemo.training.validation_callback import LANGUAGE_MEAN_KEY, LanguageValidation, monitor_key
from kemo.evaluation.intensity import LANGUAGE_MEAN_R_KEY

log = logging.getLogger(__name__)


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


def make_metrics(label_names, loss, intensity: bool = False) -> list:
    """What `fit` logs each epoch: macro-F1 at the untuned threshold (`p >= 0.5`, the
    run's decision rule; early stopping reads its `val_macro_f1`), or for an intensity
    run Pearson's r (`val_pearson_r`), and each label's loss (`loss_<label>`)."""
    first = (PearsonR(len(label_names)) if intensity
             else MacroF1(len(label_names), threshold=UNTUNED_THRESHOLD))
    return [first] + [
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
    w = max([10] + [len(n) + 2 for n in names])
    rows = [f"{'label':<{w}}{'before':>9}{'after':>9}"]
    rows += [f"{n:<{w}}{b:>9.3f}{a:>9.3f}" for n, b, a in zip(names, before, after)]
    return "\n".join(rows)


def _sampling_weights(cfg: Config, train_ex: Examples, sources=None):
    """Per-row draw probabilities: label weighting (`data.sampling_strength`) times
    language tempering (`data.language_temperature`) times dataset tempering
    (`data.dataset_temperature`, over `sources`: each row's dataset); None: a plain
    permutation."""
    weights = None
    if cfg.data.sampling_strength > 0:  # intensities: an emotion is present when > 0
        weights = sampling_weights((train_ex.labels > 0).astype("float32"), train_ex.mask,
                                   cfg.data.sampling_strength)
    weights = language_weights(train_ex.langs, cfg.data.language_temperature, weights)
    if sources is None:
        return weights
    return language_weights(sources, cfg.data.dataset_temperature, weights)


def _format_languages(langs, weights) -> str:
    n = len(langs)
    before, after = language_shares(langs), language_shares(langs, weights)
    w = max([10] + [len(lang) + 2 for lang in before])
    rows = [f"{'language':<{w}}{'rows':>8}{'sampled':>9}"]
    rows += [f"{lang:<{w}}{before[lang] * n:>8.0f}{after[lang] * n:>9.0f}"
             for lang in sorted(before)]
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
        log.info(f"data parallel over {len(devices)} devices: {devices[0]} ...")


def is_intensity(cfg: Config) -> bool:
    """Whether the run's labels are intensities 0..K (Track B), not 0/1."""
    return cfg.data.label_kind == "intensity"


def run_monitor(cfg: Config, languages) -> str:
    """What early stopping reads: val macro-F1 or, for intensities, val Pearson r; with
    several languages the mean over languages (the shared task's number)."""
    if not is_intensity(cfg):
        return monitor_key(languages)
    return LANGUAGE_MEAN_R_KEY if len(set(languages)) > 1 else "val_pearson_r"


def _make_loss(cfg: Config, train_ex: Examples):
    if is_intensity(cfg):
        return make_intensity_loss(cfg.model.head, cfg.data.max_intensity)
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


def _open_run_dir(run_dir: Path, cfg: Config, resume: bool, lock: ExitStack,
                  overwrite: bool = False) -> None:
    """Check (or create) `run_dir` and lock it for this process before it is read
    (`kemo.run.verdict`: a run kemo wrote is continued or, with `overwrite`, replaced)."""
    if resume:
        check_resumable(run_dir)
        lock.enter_context(RunLock(run_dir))
        check_resumable(run_dir)  # again, locked: it may have finished meanwhile
        return
    replace = check_new_run_dir(run_dir, overwrite)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"run directory {run_dir}: not writable ({e.strerror})") from None
    lock.enter_context(RunLock(run_dir))  # the first file in it; proves it writable
    if replace:
        check_new_run_dir(run_dir, overwrite, locked=True)  # again: it may have changed
        clear_run_dir(run_dir)


def _check_resumable_history(run_dir: Path, state: dict | None, label_names,
                             monitor: str = "val_macro_f1") -> None:
    """On resume: `label_distribution.json` and `history.json` (read back by the run)
    are valid and match the data and the checkpoint."""
    from kemo.run.json_files import label_names as check_labels, read_history
    from kemo.prediction.trained_run import read_label_distribution

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
                state_json = run_dir / L.CHECKPOINTS / state["checkpoint"] / "state.json"
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
          inputs_checked=None, overwrite: bool = False) -> dict:
    """Run one experiment end to end; returns {"report", "history", "run_dir"}.

    Progress goes to the `kemo.training` logger (`kemo.log`). `inputs_checked` (a
    callable of no arguments) is called once every input has been checked and before
    anything is written: the CLI says there what it is doing, so bad input prints
    nothing but its one error.

    The tokens of its splits go to `<run_dir>/tokens/` (a `kemo.data.token_cache`).
    With `tokens` (a cache `kemo tokenize` wrote for this config), or resuming a run
    that wrote its own, nothing is tokenised and the input path is numpy
    (`kemo.data.numpy_batches`): TensorFlow is not needed.

    With `resume=True`, `run_dir` is a run that was interrupted: training continues
    from its last checkpoint (see `kemo.training.checkpoint`) and ends as the uninterrupted
    run would have. One writer per run: the process holds `kemo.run.lock.RunLock`
    on `run_dir` from its creation (or, resuming, before it is read) to the end.

    The data root: `data_dir`, else $KEMO_DATA_DIR, else `data.data_dir`
    (`kemo.data.brighter.resolve_data_dir`); `config.toml` keeps the config's own
    `data.data_dir`, report.json's `meta.data_dir` says where the data was read.
    A finished run is lean: `model.keras` without optimizer state, and `checkpoints/`
    deleted once `report.json` is written (kept with `keep_checkpoints`).
    An existing run directory (`kemo.run.verdict`): refused, or with `overwrite` a run
    kemo wrote is replaced (its files deleted once every input is checked).
    """
    with ExitStack() as lock:
        return _train(cfg, data_dir, run_dir, verbose, resume, lock, tokens, keep_checkpoints,
                      inputs_checked, overwrite)


def _open_token_cache(tokens, run_dir: Path, resume: bool, expect: dict):
    """The token cache to train from: `tokens` (`train --tokens`) or, resuming, the run's
    own `tokens/`; None: tokenise. Refused if written for other settings or data."""
    if tokens:
        return TokenCache.load(tokens, expect)
    if resume and (run_dir / L.TOKENS / MANIFEST).is_file():
        return TokenCache.load(run_dir / L.TOKENS, expect)
    return None


@dataclass
class _Inputs:
    """What a run trains and reports on, checked before anything is written."""

    splits: object  # kemo.data.splits.Splits
    named: dict  # "train" / "val" / "dev" -> Examples
    loss: object
    expect: dict  # the token cache manifest this config and data call for
    cache: object  # TokenCache or None (tokenise)
    arrays: dict | None  # token arrays per split (None until tokenised)
    preprocessor: object
    source: object = None  # model.init_from: the finished run (kemo.prediction.trained_run.Run) it starts from

    @property
    def train(self) -> Examples:
        return self.splits.train

    @property
    def val(self) -> Examples:
        return self.splits.val

    @property
    def label_names(self):
        return self.splits.train.label_names


def _train(cfg: Config, data_dir, run_dir, verbose: int, resume: bool, lock: ExitStack,
           tokens=None, keep_checkpoints: bool = False, inputs_checked=None,
           overwrite: bool = False) -> dict:
    started = time.time()
    keras.utils.set_random_seed(cfg.train.seed)
    keras.config.set_dtype_policy(cfg.train.dtype_policy)
    set_distribution(cfg)
    writer = multiprocess.is_writer()  # several processes: process 0 writes run_dir
    if not writer:  # process 0 tells the run; the others say when they are done
        lock.enter_context(_quiet_process())
    run_dir = Path(run_dir)
    # Everything that can fail on user input happens before the run dir is written.
    inputs = _prepare_inputs(cfg, data_dir, run_dir, resume, tokens)
    model, backbone, load_seconds = _build_model(cfg, inputs, run_dir, resume)
    monitor = run_monitor(cfg, inputs.train.langs.tolist())  # several: the language mean
    state = _open_run(cfg, run_dir, resume, lock, model, inputs, monitor, overwrite)
    if inputs_checked:
        inputs_checked()
    _describe(cfg, inputs, backbone, load_seconds)
    tf_data = _tokenize(cfg, inputs, run_dir)
    weights = _sample(cfg, inputs, run_dir, resume, monitor)
    fit = _fit(cfg, model, inputs, run_dir, verbose, resume, state, monitor, weights, tf_data)
    probs = _predict_splits(cfg, model, inputs, tf_data)
    report = _finish(cfg, run_dir, model, backbone, inputs, probs, fit, resume, started)
    if writer and not keep_checkpoints:  # for resuming only; a finished run is not resumed
        remove_checkpoints(run_dir)
    if writer:
        write_manifest(run_dir, "train", finished=True)  # the end time and the files kept
    multiprocess.barrier("kemo-train-written")  # the others end once the run is written
    return {"report": report, "history": fit.history, "run_dir": run_dir}


@contextlib.contextmanager
def _quiet_process():
    """A process other than 0 of several: Keras' progress and kemo's info lines go
    nowhere (warnings still show)."""
    with warnings_only(), open(os.devnull, "w") as null, \
            contextlib.redirect_stdout(null):
        yield


def _prepare_inputs(cfg: Config, data_dir, run_dir: Path, resume: bool, tokens) -> _Inputs:
    """Read and validate the splits; the loss; the token cache and preprocessor."""
    source = _init_source(cfg)  # checked before its config is read for the split
    splits = load_data(cfg, data_dir)  # config.toml keeps data.data_dir as configured
    loss = _make_loss(cfg, splits.train)
    named = {n: ex for n, ex in zip(RUN_SPLITS, (splits.train, splits.val, splits.dev))
             if ex is not None}
    expect = expected_manifest(cfg, splits.root)
    cache = _open_token_cache(tokens, run_dir, resume, expect)
    arrays = {n: cache.arrays(n, ex) for n, ex in named.items()} if cache else None
    if cache:
        preprocessor = cache.load_preprocessor()
    elif source:  # the tokenizer the source run's weights were trained with
        preprocessor = source.preprocessor
    else:
        preprocessor = load_preprocessor(cfg.model, train_texts=splits.train.texts)
    return _Inputs(splits, named, loss, expect, cache, arrays, preprocessor, source)


def _init_source(cfg: Config):
    """The finished run `model.init_from` names (every file checked), or None."""
    if not cfg.model.init_from:
        return None
    from kemo.prediction.trained_run import load_run

    key = "config key 'model.init_from'"
    if is_intensity(cfg):
        raise InputError(f"{key}: not supported with data.label_kind = \"intensity\" (the "
                         "intensity heads do not take a classifier's head)")
    if cfg.model.prune_vocabulary:
        raise InputError(f"{key}: cannot be combined with 'model.prune_vocabulary' (the "
                         "source run's tokenizer and embedding are used as they are)")
    path = Path(cfg.model.init_from).expanduser()
    if not path.is_dir():
        raise InputError(f"{key}: {path} is not a directory (a finished kemo run)")
    source = load_run(path)
    if cfg.model.preset and cfg.model.preset != source.config.model.preset:
        raise InputError(f"{key}: {path} was trained from preset "
                         f"{source.config.model.preset or '(random inline)'!r}, this config "
                         f"names {cfg.model.preset!r} (set model.preset to the same, or \"\")")
    return source


def _build_model(cfg: Config, inputs: _Inputs, run_dir: Path, resume: bool):
    """The backbone (pruned, frozen, fused as configured) under a sigmoid head, compiled;
    returns (model, backbone, seconds to load the backbone)."""
    t_load = time.time()
    if inputs.source:  # model.init_from: the source run's backbone, weights and all
        backbone = find_backbone(inputs.source.model)
        backbone.trainable = True  # as a preset loads: this config's freezing applies below
        check_sequence_length(backbone, cfg.model.sequence_length, cfg.model.init_from)
    else:
        backbone = load_backbone(cfg.model, inputs.preprocessor.tokenizer.vocabulary_size())
    load_seconds = time.time() - t_load
    if cfg.model.prune_vocabulary:  # only the token rows the run's texts use
        inputs.preprocessor, backbone, inputs.arrays = prune_vocabulary(
            cfg, inputs.splits.root, inputs.preprocessor, backbone, inputs.arrays,
            run_dir if resume else None)
    if cfg.model.freeze_token_embeddings:
        token_embedding(backbone).trainable = False  # nested in XLM-R's `embeddings`
    freeze_lower_layers(backbone, cfg.model.freeze_layers)
    if cfg.model.fused_attention:
        use_fused_attention(backbone)
    names = inputs.label_names
    if is_intensity(cfg):
        model = build_intensity_model(backbone, len(names), cfg.data.max_intensity,
                                      cfg.model.head, cfg.model.pooling, cfg.model.dropout)
    else:
        model = build_classifier(backbone, len(names), cfg.model.pooling, cfg.model.dropout)
    if inputs.source:
        shared = copy_head(inputs.source.model, inputs.source.label_names, model, names)
        log.info(f"init_from {cfg.model.init_from}: backbone and the head of "
                 f"{len(shared)} of {len(names)} labels ({', '.join(shared) or 'none'})")
    steps = steps_per_epoch(len(inputs.train), cfg.train.batch_size)
    model.compile(optimizer=make_optimizer(cfg, steps * cfg.train.epochs), loss=inputs.loss,
                  metrics=make_metrics(names, inputs.loss, is_intensity(cfg)))
    return model, backbone, load_seconds


def _open_run(cfg: Config, run_dir: Path, resume: bool, lock: ExitStack, model,
              inputs: _Inputs, monitor: str, overwrite: bool = False):
    """Lock the run directory; resuming, read the checkpoint into `model` (everything
    checked before anything is written), else write the config. Returns the
    checkpoint's state (None: none). Several processes: process 0 alone locks and
    writes; its verdict on the run directory is every process's."""
    writer, error = multiprocess.is_writer(), None
    try:
        if writer:
            _open_run_dir(run_dir, cfg, resume, lock, overwrite)
    except InputError as e:
        error = str(e)
    multiprocess.broadcast_error(error)  # raises process 0's error on every process
    state = None
    if resume:
        state = load_checkpoint(run_dir, model, cfg.train.epochs,
                                cfg.train.early_stopping_patience > 0)
        _check_resumable_history(run_dir, state, inputs.label_names, monitor)
    elif writer:
        (run_dir / L.CONFIG).write_text(dump_config(cfg))
        if cfg.model.prune_vocabulary:  # --resume rebuilds the same pruned shapes
            save_keep(run_dir, inputs.preprocessor)
    if writer:
        write_manifest(run_dir, "train", resumed=resume)  # a run from before run.json: one
    return state


def _describe(cfg: Config, inputs: _Inputs, backbone, load_seconds: float) -> None:
    dev = inputs.splits.dev
    log.info(f"backbone: {cfg.model.preset or 'random weights'} loaded in {load_seconds:.1f}s "
             f"({backbone.count_params() / 1e6:.1f}M weights)")
    source = "dev, NOT held out" if inputs.splits.val_is_dev else "from train"
    log.info(f"data: {len(inputs.train)} train, {len(inputs.val)} validation ({source}), "
             f"{len(dev) if dev is not None else 0} dev rows; languages "
             f"{', '.join(dict.fromkeys(inputs.train.langs))}; "
             f"labels {', '.join(inputs.label_names)}")
    note = validation_note(inputs.val, cfg.data) if cfg.thresholds.tune else None
    if note:
        log.warning(note)


def _tokenize(cfg: Config, inputs: _Inputs, run_dir: Path):
    """Token arrays of every split (from the cache, else tokenised), kept in the run's
    `tokens/`; returns the input path's `tf_data` (False: numpy, no TensorFlow)."""
    t0 = time.time()
    cache = inputs.cache
    if cache:
        log.info(f"tokens from {cache.path} (sequence_length {cfg.model.sequence_length})")
    else:
        inputs.arrays = tokenize_splits({n: ex.texts for n, ex in inputs.named.items()},
                                        inputs.preprocessor)
        log.info(f"tokenised in {time.time() - t0:.1f}s "
                 f"(sequence_length {cfg.model.sequence_length})")
    if multiprocess.is_writer() and (cache is None or cache.path != run_dir / L.TOKENS):
        TokenCache.write(run_dir / L.TOKENS, inputs.named, inputs.arrays, inputs.preprocessor,
                         inputs.expect,
                         cache.manifest["tokenize_seconds"] if cache else time.time() - t0)
    return False if cache else None


def _sample(cfg: Config, inputs: _Inputs, run_dir: Path, resume: bool, monitor: str):
    """Per-row draw weights (labels, languages), their effect printed and kept in
    `label_distribution.json`; None: a plain permutation."""
    train_ex, names = inputs.train, inputs.label_names
    weights = _sampling_weights(cfg, train_ex, inputs.splits.train_sources)
    present = (train_ex.labels > 0).astype("float32")  # intensities: the rate of > 0
    before = label_distribution(present, train_ex.mask)
    after = label_distribution(present, train_ex.mask,
                               epoch_indices(len(train_ex), cfg.train.seed, 0, weights))
    log.info("label distribution (positive rate), before and after sampling "
             f"(strength {cfg.data.sampling_strength}):")
    log.info(_format_distribution(names, before, after))
    if monitor in (LANGUAGE_MEAN_KEY, LANGUAGE_MEAN_R_KEY):  # several languages
        log.info(f"rows per language and epoch, before and after sampling (language "
                 f"temperature {cfg.data.language_temperature}):")
        log.info(_format_languages(train_ex.langs, weights))
    sources = inputs.splits.train_sources
    if sources is not None:  # data.extra_datasets
        names_of = ["this config's"] + list(cfg.data.extra_datasets)
        log.info(f"rows per dataset and epoch, before and after sampling (dataset "
                 f"temperature {cfg.data.dataset_temperature}):")
        log.info(_format_languages(np.array([names_of[k] for k in sources]), weights)
                 .replace("language", "dataset", 1))
    if multiprocess.is_writer() and not (resume and (run_dir / L.LABEL_DISTRIBUTION).exists()):
        (run_dir / L.LABEL_DISTRIBUTION).write_text(json.dumps(
            {"labels": list(names), "before": before.tolist(), "after": after.tolist(),
             "sampling_strength": cfg.data.sampling_strength}, indent=1))
    return weights


@dataclass
class _Fit:
    history: list
    epochs_run: int
    best_epoch: int | None  # the epoch whose weights early stopping restored (1-based)
    seconds: float
    start_epoch: int


def _fit(cfg: Config, model, inputs: _Inputs, run_dir: Path, verbose: int, resume: bool,
         state, monitor: str, weights, tf_data) -> _Fit:
    """`model.fit` from the checkpoint's epoch and step (or the first) to the end or
    early stop."""
    batch, buckets, arrays = cfg.train.batch_size, cfg.data.length_buckets, inputs.arrays["train"]
    steps = steps_per_epoch(len(inputs.train), batch)
    start_epoch, start_step = _resume_point(run_dir, resume, state, steps)
    train_ds = input_batches(arrays, inputs.train.y, batch, tf_data=tf_data,
                             seed=cfg.train.seed, epochs=cfg.train.epochs, start_epoch=start_epoch,
                             weights=weights, buckets=buckets, part=multiprocess.part(),
                             start_step=start_step)
    if start_step and not hasattr(train_ds, "element_spec"):  # numpy batches, not tf.data:
        # as a generator, as Keras' PyDataset adapter refuses an epoch ended early
        train_ds = _as_generator(train_ds)
    plan = BatchPlan(token_lengths(arrays), batch,  # the same order: for the compile notes
                     length_buckets(buckets, arrays["token_ids"].shape[1]),
                     cfg.train.seed, cfg.train.epochs, start_epoch, weights, start_step=start_step)
    callbacks, early_stopping, val_ds = _callbacks(cfg, inputs, run_dir, verbose, resume, state,
                                                   monitor, tf_data, plan, start_epoch)
    patience = cfg.train.early_stopping_patience
    stopped_early = bool(early_stopping and state and state.get("early_stopping")
                         and state["early_stopping"]["wait"] >= patience)
    t0 = time.time()
    if start_epoch < cfg.train.epochs and not stopped_early:
        try:
            model.fit(train_ds, validation_data=val_ds, epochs=cfg.train.epochs,
                      initial_epoch=start_epoch, steps_per_epoch=steps,
                      callbacks=callbacks, verbose=verbose, shuffle=False)
        except KeyboardInterrupt:
            if multiprocess.is_writer():
                log.warning(f"\ninterrupted: continue with --resume {run_dir}")
            raise
    elif state and state.get("best_weights") is not None:
        # Training had ended before the kill: early stopping's best weights, as at its end.
        model.set_weights(state["best_weights"])
    seconds = time.time() - t0
    history = next(c for c in callbacks if isinstance(c, JsonHistory)).epochs  # history.json
    best_epoch = None
    if early_stopping is not None and getattr(early_stopping, "best_weights", None) is not None:
        best_epoch = int(early_stopping.best_epoch) + 1
    elif early_stopping is not None and state and state.get("early_stopping"):
        best_epoch = int(state["early_stopping"]["best_epoch"]) + 1
    return _Fit(history, len(history), best_epoch, seconds, start_epoch)


def _as_generator(batches):
    """`batches` (a `TokenBatches`) one after the other, as a generator."""
    return (batches[i] for i in range(len(batches)))


def _resume_point(run_dir: Path, resume: bool, state, steps: int) -> tuple[int, int]:
    """(epochs complete, steps of the next one done) at the checkpoint, said when resuming."""
    start_epoch, start_step = (state["epoch"], state.get("step", 0)) if state else (0, 0)
    if start_step >= steps:
        raise InputError(f"{run_dir / L.CHECKPOINTS / state['checkpoint']}: step {start_step}, "
                         f"but an epoch has {steps} steps (data or batch size changed since?)")
    if resume and start_step:
        log.info(f"resuming {run_dir} after epoch {start_epoch}, at step {start_step} of "
                 f"{steps} in epoch {start_epoch + 1}")
    elif resume:
        log.info(f"resuming {run_dir} after epoch {start_epoch}" if state
                 else f"resuming {run_dir}: no checkpoint yet, starting from epoch 1")
    return start_epoch, start_step


def _callbacks(cfg: Config, inputs: _Inputs, run_dir: Path, verbose: int, resume: bool,
               state, monitor: str, tf_data, plan, start_epoch: int):
    """(callbacks, early stopping or None, Keras' validation data or None), in the
    order they must run: NaN guard first, the checkpoint after what it saves."""
    names, loss, buckets = inputs.label_names, inputs.loss, cfg.data.length_buckets
    writer, part = multiprocess.is_writer(), multiprocess.part()  # only process 0 writes
    callbacks = [keras.callbacks.CSVLogger(str(run_dir / L.HISTORY_CSV), append=resume)] * writer
    callbacks.append(JsonHistory(run_dir / L.HISTORY_JSON, write=writer))
    val_ds = None
    if monitor in (LANGUAGE_MEAN_KEY, LANGUAGE_MEAN_R_KEY):  # one validation pass, first
        callbacks.insert(0, LanguageValidation(inputs.arrays["val"], inputs.val, loss,
                                               make_metrics(names, loss, is_intensity(cfg)),
                                               cfg.train.batch_size, buckets, tf_data,
                                               intensity=is_intensity(cfg)))
    else:  # Keras' own validation pass
        val_ds = input_batches(inputs.arrays["val"], inputs.val.y, cfg.train.batch_size,
                               tf_data=tf_data, buckets=buckets, shuffle=False, part=part)
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
    start_step = state.get("step", 0) if state else 0
    if start_step:  # first: the shortened epoch's stop is cleared before early stopping's
        idx, length = plan[0]
        first = batch_arrays(inputs.arrays["train"], inputs.train.y, idx, length,
                             cfg.train.batch_size, part=part)
        callbacks.insert(0, ResumeInsideEpoch(start_epoch, start_step, plan.steps,
                                              state.pop("metrics"),
                                              run_dir / L.CHECKPOINTS / state["checkpoint"],
                                              first))
    callbacks += [RunCheckpoint(run_dir, early_stopping, cfg.train.checkpoint_every_steps,
                                plan.steps, (start_epoch, start_step))] * writer
    callbacks.append(ReraiseInterrupt())  # after the checkpoint: an ended epoch is saved
    callbacks += monitor_callbacks(  # progress bar, compile notes per bucket, TensorBoard
        run_dir, verbose, bucket_of_step=lambda epoch, batch: plan[
            (epoch - start_epoch) * plan.steps + batch
            - (start_step if epoch > start_epoch else 0)][1]) if writer else []
    return callbacks, early_stopping, val_ds


def _predict_splits(cfg: Config, model, inputs: _Inputs, tf_data) -> dict:
    """Probabilities of validation and dev (rows x labels), each pass announced."""
    probs = {}
    for name, arr in inputs.arrays.items():
        if name != "train":  # a line before each wait: predicting compiles too
            split = "validation" if name == "val" else name
            log.info(f"evaluating {split} ({len(inputs.named[name])} rows) ...")
            t1 = time.time()
            if is_intensity(cfg):  # the continuous intensity, 0..K
                probs[name] = np.asarray(intensity_scores(predict_logits(
                    model, arr, cfg.train.batch_size, cfg.data.length_buckets, tf_data)),
                    dtype="float32")
            else:
                probs[name] = predict_probs(model, arr, cfg.train.batch_size,
                                            cfg.data.length_buckets, tf_data)
            log.info(f"evaluated {split} in {time.time() - t1:.1f}s")
    return probs


def _init_meta(source):
    """report.json's record of where the weights came from (`model.init_from`)."""
    if source is None:
        return ABSENT
    from kemo.run.manifest import read_manifest

    return {"run": str(source.path.resolve()),
            "model_sha256": (read_manifest(source.path) or {}).get("model_sha256"),
            "labels": list(source.label_names)}


def _zero_shot(inputs: _Inputs) -> list[str]:
    """The languages scored on dev without a train file (Track B's `ron`)."""
    zero = getattr(inputs.splits.dataset, "zero_shot_languages", lambda: [])()
    if zero:
        log.info(f"zero-shot (no train file): {', '.join(zero)}; their dev is predicted "
                 "by the model trained on the other languages")
    return zero


def _validation_meta(splits):
    """report.json's `meta.validation` where validation is the dataset's dev (the report
    then says dev is not held out); nothing for a split carved from train."""
    if not splits.val_is_dev:
        return ABSENT
    return ("dev: thresholds and early stopping were fitted on dev, so dev is NOT held "
            "out (data.validation = \"dev\")")


def _finish(cfg: Config, run_dir: Path, model, backbone, inputs: _Inputs, probs: dict,
            fit: _Fit, resume: bool, started: float) -> dict:
    """Thresholds (intensities: cut points), predictions, model and preprocessor;
    `report.json` last. Returns report.json's object."""
    val, dev = inputs.val, inputs.splits.dev
    if is_intensity(cfg):
        cuts, splits = finish_intensity(cfg, val, dev, probs)
        decides = dict(decides_with=CUT_POINTS, head=cfg.model.head,
                       zero_shot_languages=_zero_shot(inputs))
        kind = dict(label_kind=INTENSITY, max_intensity=cfg.data.max_intensity)
    else:
        fin = finish(cfg.thresholds, val, dev, probs, warn=multiprocess.is_writer())
        if inputs.splits.val_is_dev:  # thresholds.json says so too
            fin.search.fitted_on = fin.per_language.fitted_on = "dev split (not held out)"
        splits, decides, kind = fin.splits, fin.meta_fields(), {}
    note = validation_note(val, cfg.data) if cfg.thresholds.tune else None
    meta = Meta(
        epochs_run=fit.epochs_run, best_epoch_restored=fit.best_epoch,
        fit_seconds=round(fit.seconds, 1), total_seconds=round(time.time() - started, 1),
        backend=keras.backend.backend(), **decides,
        train_rows=len(inputs.train), val_rows=len(val),
        resumed_after_epoch=fit.start_epoch if resume else None,
        data_dir=str(inputs.splits.root.resolve()), cpu=cpu_info(),
        processes=multiprocess.process_count(), validation=_validation_meta(inputs.splits),
        init_from=_init_meta(inputs.source),
        notes=[note] if note else ABSENT)  # the report page shows them
    report = Report(splits, meta, **kind)
    if multiprocess.is_writer():  # several processes: process 0 alone writes
        if is_intensity(cfg):
            write_intensity_decisions(run_dir, cuts, val, dev, probs)
        else:
            write_decisions(run_dir, fin, val, dev, probs, inputs.splits.dataset)
        save_model_without_optimizer(model, run_dir / L.MODEL)  # no AdamW moments
        save_preprocessor(inputs.preprocessor, backbone, run_dir / L.PREPROCESSOR)
        report.write(run_dir)  # last: its presence marks a finished run
    return report.to_dict()
