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
import logging
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import keras
import numpy as np

from kemo import multiprocess
from kemo.atomic import write_text as atomic_write_text
from kemo.config import Config, dump_config
from kemo.data.numpy_batches import tensorflow_available
from kemo.data.splits import validation_note
from kemo.errors import InputError
from kemo.log import warnings_only
from kemo.machine import cpu_info
from kemo.models.backbones import save_preprocessor
from kemo.models.intensity_heads import intensity_scores
from kemo.prediction.batches import predict_logits, predict_probs
from kemo.run import layout as L
from kemo.evaluation.finish import finish, write_decisions
from kemo.evaluation.intensity_finish import finish_intensity, write_intensity_decisions
from kemo.run.report_file import ABSENT, CUT_POINTS, INTENSITY, Meta, Report
from kemo.run.manifest import read_manifest, write_manifest
from kemo.training.build import backbone_for, compiled_model
from kemo.training.checkpoint import (load_checkpoint, remove_checkpoints,
                                      save_model_without_optimizer)
from kemo.training.context import TrainContext, run_monitor
from kemo.training.distribution import set_distribution
from kemo.training.fit import FitResult, fit
from kemo.training.inputs import Inputs, prepare_inputs, tokenize
from kemo.training.resume import check_resumable_history
from kemo.training.run_directory import open_run_dir
from kemo.training.sampling import sample
from kemo.training.vocabulary import prune_vocabulary, save_keep

log = logging.getLogger(__name__)


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

    The keyword arguments are the API `kemo train`'s options map onto; the steps below
    read them from one frozen `TrainContext`.
    """
    with ExitStack() as lock:
        started = _set_up_process(cfg, lock)
        run_dir = Path(run_dir)
        # Everything that can fail on user input happens before the run dir is written.
        inputs = prepare_inputs(cfg, data_dir, run_dir, resume, tokens)
        ctx = TrainContext(
            cfg, run_dir, started, monitor=run_monitor(cfg, inputs.train.langs.tolist()),
            tf_data=inputs.cache is None and tensorflow_available(),  # a cache: numpy
            resume=resume, overwrite=overwrite, keep_checkpoints=keep_checkpoints,
            verbose=verbose)
        return _train(ctx, inputs, lock, inputs_checked)


def _train(ctx: TrainContext, inputs: Inputs, lock: ExitStack, inputs_checked=None) -> dict:
    """The steps of one training, in order; each returns what it makes."""
    backbone, load_seconds = backbone_for(ctx.cfg, inputs)
    inputs, backbone = _prune_vocabulary(ctx, inputs, backbone)
    model = compiled_model(ctx, inputs, backbone)
    state = _open_run(ctx, lock, model, inputs)  # the checkpoint's state, or None
    if inputs_checked:
        inputs_checked()
    _describe(ctx.cfg, inputs, backbone, load_seconds)
    inputs = tokenize(ctx.cfg, inputs, ctx.run_dir)
    weights = sample(ctx, inputs.splits)
    result = fit(ctx, model, inputs, state, weights)
    probs = _predict_splits(ctx, model, inputs)
    report = _finish(ctx, model, backbone, inputs, probs, result)
    _close_run(ctx)
    return {"report": report, "history": result.history, "run_dir": ctx.run_dir}


def _set_up_process(cfg: Config, lock: ExitStack) -> float:
    """Seeds, dtype policy and devices for this process; returns when it started. A
    process other than 0 of several is quiet until `lock` closes."""
    started = time.time()
    keras.utils.set_random_seed(cfg.train.seed)
    keras.config.set_dtype_policy(cfg.train.dtype_policy)
    set_distribution(cfg)
    if not multiprocess.is_writer():  # process 0 tells the run; the others say when done
        lock.enter_context(_quiet_process())
    return started


@contextlib.contextmanager
def _quiet_process():
    """A process other than 0 of several: Keras' progress and kemo's info lines go
    nowhere (warnings still show)."""
    with warnings_only(), open(os.devnull, "w") as null, \
            contextlib.redirect_stdout(null):
        yield


def _prune_vocabulary(ctx: TrainContext, inputs: Inputs, backbone):
    """`model.prune_vocabulary`: (inputs, backbone) with only the token rows the run's
    texts use (resuming: the rows it kept); else as they are."""
    if not ctx.cfg.model.prune_vocabulary:
        return inputs, backbone
    preprocessor, backbone, arrays = prune_vocabulary(
        ctx.cfg, inputs.splits.root, inputs.preprocessor, backbone, inputs.arrays,
        ctx.run_dir if ctx.resume else None)
    return replace(inputs, preprocessor=preprocessor, arrays=arrays), backbone


def _open_run(ctx: TrainContext, lock: ExitStack, model, inputs: Inputs):
    """Lock the run directory; resuming, read the checkpoint into `model` (everything
    checked before anything is written), else write the config. Returns the
    checkpoint's state (None: none). Several processes: process 0 alone locks and
    writes; its verdict on the run directory is every process's."""
    cfg, run_dir, error = ctx.cfg, ctx.run_dir, None
    try:
        if ctx.writer:
            open_run_dir(run_dir, ctx.resume, lock, ctx.overwrite)
    except InputError as e:
        error = str(e)
    multiprocess.broadcast_error(error)  # raises process 0's error on every process
    state = None
    if ctx.resume:
        state = load_checkpoint(run_dir, model, cfg.train.epochs,
                                cfg.train.early_stopping_patience > 0)
        check_resumable_history(run_dir, state, inputs.label_names, ctx.monitor)
    if ctx.writer:
        write_manifest(run_dir, "train", resumed=ctx.resume,  # a run from before run.json: one
                       data_dir=inputs.splits.root)  # `--resume` reads its data from there
    if ctx.writer and not ctx.resume:
        if cfg.model.prune_vocabulary:  # --resume rebuilds the same pruned shapes
            save_keep(run_dir, inputs.preprocessor)
        # config.toml last, whole or not at all: a run directory holding one is resumable
        # (`--resume` needs it; a kill before it leaves a run to start again)
        atomic_write_text(run_dir / L.CONFIG, dump_config(cfg))
    return state


def _describe(cfg: Config, inputs: Inputs, backbone, load_seconds: float) -> None:
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


def _close_run(ctx: TrainContext) -> None:
    """A finished run: its checkpoints removed (unless kept) and `run.json` closed; the
    other processes of several end once process 0 has written it."""
    if ctx.writer and not ctx.keep_checkpoints:  # for resuming only; a finished run is not resumed
        remove_checkpoints(ctx.run_dir)
    if ctx.writer:
        write_manifest(ctx.run_dir, "train", finished=True)  # the end time and the files kept
    multiprocess.barrier("kemo-train-written")  # the others end once the run is written


def _predict_splits(ctx: TrainContext, model, inputs: Inputs) -> dict:
    """Probabilities of validation and dev (rows x labels), each pass announced."""
    cfg, tf_data, probs = ctx.cfg, ctx.tf_data, {}
    for name, arr in inputs.arrays.items():
        if name != "train":  # a line before each wait: predicting compiles too
            split = "validation" if name == "val" else name
            log.info(f"evaluating {split} ({len(inputs.named[name])} rows) ...")
            t1 = time.time()
            if ctx.intensity:  # the continuous intensity, 0..K
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
    return {"run": str(source.path.resolve()),
            "model_sha256": (read_manifest(source.path) or {}).get("model_sha256"),
            "labels": list(source.label_names)}


def _zero_shot(inputs: Inputs) -> list[str]:
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


def _finish(ctx: TrainContext, model, backbone, inputs: Inputs, probs: dict,
            fit: FitResult) -> dict:
    """Thresholds (intensities: cut points), predictions, model and preprocessor;
    `report.json` last. Returns report.json's object."""
    cfg, run_dir, val, dev = ctx.cfg, ctx.run_dir, inputs.val, inputs.splits.dev
    if ctx.intensity:
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
        fit_seconds=round(fit.seconds, 1), total_seconds=round(time.time() - ctx.started, 1),
        backend=keras.backend.backend(), **decides,
        train_rows=len(inputs.train), val_rows=len(val),
        resumed_after_epoch=fit.start_epoch if ctx.resume else None,
        data_dir=str(inputs.splits.root.resolve()), cpu=cpu_info(),
        processes=multiprocess.process_count(), validation=_validation_meta(inputs.splits),
        init_from=_init_meta(inputs.source),
        notes=[note] if note else ABSENT)  # the report page shows them
    report = Report(splits, meta, **kind)
    if ctx.writer:  # several processes: process 0 alone writes
        if ctx.intensity:
            write_intensity_decisions(run_dir, cuts, val, dev, probs)
        else:
            write_decisions(run_dir, fin, val, dev, probs, inputs.splits.dataset)
        save_model_without_optimizer(model, run_dir / L.MODEL)  # no AdamW moments
        save_preprocessor(inputs.preprocessor, backbone, run_dir / L.PREPROCESSOR)
        report.write(run_dir)  # last: its presence marks a finished run
    return report.to_dict()


def train_or_keep(cfg: Config, run_dir: Path, data_dir, verbose: int = 2) -> str:
    """One run of a multi-run workflow (`kemo finetune`, `kemo crosslingual`): kept when
    it finished before, resumed when it started before, else trained; returns what was
    done, for the workflow's log.

    Example:
        train_or_keep(cfg, Path("runs/ft/deu"), "../shared/data/brighter/track_a")
        # 'trained in 312s' (then 'finished before: kept')
    """
    if (run_dir / L.REPORT).is_file():
        return "finished before: kept"
    resume = (run_dir / L.CONFIG).is_file()
    keras.backend.clear_session()
    t0 = time.time()
    train(cfg, data_dir=data_dir, run_dir=run_dir, verbose=verbose, resume=resume)
    return f"{'resumed' if resume else 'trained'} in {time.time() - t0:.0f}s"
