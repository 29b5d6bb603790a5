"""`kemo train`: train, tune thresholds and report from a config (`kemo.training`).

Example:
    kemo train --backend jax --config configs/tiny.toml --set train.epochs=2
    kemo train --local-processes 2 --config tiny --set train.distribution='"data_parallel"'
"""

from __future__ import annotations

import time
from pathlib import Path

from kemo import multiprocess
from kemo.cli.args import BACKENDS, DATA_DIR_HELP
from kemo.config import load_config
from kemo.default_config import resolve_config
from kemo.errors import InputError
from kemo.evaluation.result_text import (format_console_report, format_intensity_table,
                                         result_line)
from kemo.machine import describe_cpu
from kemo.run import layout as L
from kemo.run.manifest import recorded_data_dir
from kemo.run.report_file import Report


def add_parser(sub):
    t = sub.add_parser("train", help="train, tune thresholds and report from a config")
    t.add_argument("--config", help="a TOML file, or a name in configs/ (`tiny`, "
                   "`offline/xlmr_eng`; default: configs/default.toml, or "
                   "$KEMO_DEFAULT_CONFIG: MiniLM on English, minutes on a CPU)")
    t.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run from its last checkpoint "
                        "(its own config.toml; its data: --data-dir, $KEMO_DATA_DIR, data.data_dir, else where it read it)")
    t.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.epochs=3 (repeatable; "
                   "the keys and their defaults are listed below)")
    t.add_argument("--data-dir", default=None,
                   help=DATA_DIR_HELP)
    t.add_argument("--run-dir", default=None,
                   help="where everything the run writes goes (default runs/<config>-<time>): "
                   "a new or empty folder, or with --overwrite a run kemo wrote")
    t.add_argument("--overwrite", action="store_true",
                   help="replace --run-dir when it holds a finished or failed run kemo wrote "
                   "(its files are deleted first, after saying so); never a folder holding "
                   "anything kemo did not write")
    t.add_argument("--quiet", action="store_true", help="no progress (default: a progress "
                   "bar per epoch on a terminal, one line per epoch otherwise)")
    t.add_argument("--tokens", metavar="CACHE", default=None,
                   help="train from a token cache `kemo tokenize` wrote for this config "
                   "(no tokenising, no TensorFlow needed)")
    t.add_argument("--local-processes", metavar="N", type=_processes, default=None,
                   help="run as N processes of one run on this machine (JAX's distributed "
                   "runtime; needs train.distribution = \"data_parallel\"); at most one "
                   "per CPU core the memory holds (refused above that, saying the bound). "
                   "--resume takes any N, or none: batches and dropout are drawn for the "
                   "global batch, so the same total device count continues to the same "
                   "result (another count differs by float summation order); "
                   "train.batch_size must divide by the device count")
    t.add_argument("--keep-checkpoints", action="store_true",
                   help="keep <run_dir>/checkpoints/ once the run has finished (default: "
                   "deleted after report.json is written; model.keras holds the weights)")


def _processes(text: str) -> int:
    import argparse

    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of processes >= 1, got {text!r}")
    return n


def _child_argv(args, config, run_dir) -> list[str]:
    """This command for each process `--local-processes` starts (its run directory fixed)."""
    argv = ["train", "--resume", str(run_dir)] if args.resume else \
        ["train", "--config", str(config), "--run-dir", str(run_dir)] \
        + ["--overwrite"] * args.overwrite
    argv += [a for s in args.set for a in ("--set", s)]
    for flag, value in (("--backend", args.backend), ("--data-dir", args.data_dir),
                        ("--tokens", args.tokens)):
        if value:
            argv += [flag, str(value)]
    argv += ["--quiet"] * args.quiet + ["--keep-checkpoints"] * args.keep_checkpoints
    return argv


def main(args) -> int:
    from kemo.training.run_directory import check_run_dir

    several = multiprocess.requested()  # this process is one of several
    if several:
        multiprocess.check_settings()  # a malformed address or count: refused at once
    if args.local_processes:
        multiprocess.check_local_processes(args.local_processes)  # what the machine holds
    # Config and run directory first: a bad value or a busy run fails before the heavy
    # imports. One of several: process 0 locks the run directory (and checks a new one)
    # once JAX has started (`kemo.training.run_directory.open_run_dir`).
    if args.resume:
        if args.config or args.set or args.run_dir or args.tokens or args.overwrite:
            raise InputError("--resume uses the run's own directory, config.toml and tokens/: "
                             "drop --config/--set/--run-dir/--tokens/--overwrite")
        run_dir = Path(args.resume)
        check_run_dir(run_dir, resume=True, locked=several)  # unfinished, kemo's, not busy
        config = run_dir / L.CONFIG
        cfg = load_config(config)
    else:
        config = resolve_config(args.config)
        cfg = load_config(config, args.set)
        run_dir = args.run_dir or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        if not several:
            check_run_dir(run_dir, resume=False, overwrite=args.overwrite)  # also: in progress
    if args.local_processes:
        if several:
            raise InputError("--local-processes: this process is already one of several "
                             f"({multiprocess.NUM} or KEMO_MULTI_HOST is set)")
        if cfg.train.distribution == "none":
            raise InputError("--local-processes: config key 'train.distribution' is \"none\"; "
                             "several processes need \"data_parallel\" "
                             "(--set train.distribution='\"data_parallel\"')")
        return multiprocess.launch(_child_argv(args, config, run_dir), args.local_processes)
    from kemo.data.dataset import describe_dataset, open_dataset

    dataset = open_dataset(cfg.data, args.data_dir,  # resuming, told nothing: the data it read
                           recorded_data_dir(run_dir) if args.resume else None)
    data_dir = dataset.root
    inline = "none (a small random BERT, vocabulary learnt from the training texts)"
    # What it is doing, printed once the inputs are checked (bad input prints one error).
    doing = "\n".join([
        f"resuming {run_dir} (its config.toml)" if args.resume else f"config: {config}"
        + ("" if args.config else " (the default; --config FILE for another)"),
        f"preset: {cfg.model.preset or inline}",
        f"data: {describe_dataset(dataset)}"])
    from kemo.training.monitor import progress_verbosity
    from kemo.training import train

    result = train(cfg, data_dir=data_dir, run_dir=run_dir,
                   verbose=progress_verbosity(args.quiet), resume=bool(args.resume),
                   tokens=args.tokens, keep_checkpoints=args.keep_checkpoints,
                   overwrite=args.overwrite,
                   inputs_checked=lambda: print(doing))
    if not multiprocess.is_writer():  # the others wrote nothing
        print(f"process {multiprocess.process_index()}: done (process 0 wrote {run_dir})")
        return 0
    report = Report.from_dict(result["report"])
    _print_result(report)
    print(result_line(report))
    print(f"run directory: {result['run_dir']}")
    return 0


def _print_result(report) -> None:
    """The report's tables (a `kemo.run.report_file.Report`), then how long it trained
    and on what."""
    meta = report.meta
    best = meta.best_epoch_restored
    print()
    if report.intensity:
        print("Pearson r per language (official Track B measure; r(int): the integers "
              "the cut points give)")
        print(format_intensity_table(report))
    else:
        print(format_console_report(report))
    print(f"\ntrained {meta.epochs_run} epochs"
          + (f", best epoch {best} restored" if best else "")
          + f" (fit {meta.fit_seconds:.0f}s; cpu: {describe_cpu(meta.cpu)})")
