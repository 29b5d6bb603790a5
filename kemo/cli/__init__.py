"""The `kemo` command. `scripts/*.py` are one-line shims over its subcommands.

    kemo train --backend jax [--config configs/tiny.toml] [--set train.epochs=2]
               [--data-dir DIR] [--run-dir DIR]   # no --config: configs/default.toml
    kemo tokenize [--config C] [--set K=V] [--data-dir DIR] --out CACHE
    kemo predict RUN_DIR [FILES...] [--split test --languages eng hin] [--text "..."]
    kemo evaluate PREDICTIONS [--gold DIR | --split dev --data-dir DIR]
    kemo report RUN_DIR [--data-dir DIR]
    kemo explain RUN_DIR (--text "..." | --csv FILE) [--num-samples 500]
    kemo export RUN_DIR [--out DIR]
    kemo ensemble RUN_A RUN_B [...] --run-dir DIR [--weights 1 1] [--serve specialist]
    kemo finetune RUN_DIR --out DIR [--languages L ...] [--set K=V]
    kemo crosslingual --config C (--folds N | --train-languages L ...) --out DIR
                      [--reference RUN] [--resume]   # Track C: zero-shot languages
    kemo runs [DIR] [--json]
    kemo weights list | fetch [NAME...] | where NAME

One module per command in this package (`kemo/cli/<command>.py`: `add_parser(sub)` and
`run(args)`); shared argparse types in `kemo/cli/args.py`, the `--help` examples in
`kemo/cli/examples.py`. Bad input (config, data, preset, run directory) prints one
`error: ...` line naming the file, row and column or the config key, and exits with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from kemo import multiprocess
from kemo.cli import (crosslingual, ensemble, evaluate, explain, export, finetune, predict,
                      report, runs, tokenize, train, weights)
from kemo.cli.args import BACKENDS, Parser

__all__ = ["BACKENDS", "main", "run_as_script"]

COMMANDS = {"train": train, "tokenize": tokenize, "predict": predict, "evaluate": evaluate,
            "report": report, "explain": explain, "export": export, "ensemble": ensemble,
            "finetune": finetune, "crosslingual": crosslingual, "runs": runs, "weights": weights}


def _parser() -> argparse.ArgumentParser:
    from kemo.cli.examples import add_examples

    parser = Parser(prog="kemo", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"kemo {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(sub)
    add_examples(parser)  # every --help ends with a runnable example
    return parser


def _version() -> str:
    """The installed package's version (pyproject.toml), without importing kemo's models."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kemo")
    except PackageNotFoundError:  # a checkout on sys.path, not installed
        return "unknown (not installed)"


def _set_backend(name: str | None):
    os.environ["KERAS_BACKEND"] = name or os.environ.get("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # JAX keeps compiled XLA programs on disk: a second run of the same model and
    # buckets loads them instead of compiling (seconds per bucket on CPU).
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                          str(Path.home() / ".cache" / "kemo" / "xla"))


def main(argv=None) -> int:
    """`kemo ARGS...` in-process; returns the exit code (2: bad input, one error line).

    Example:
        main(["train", "--config", "configs/tiny.toml", "--set", "train.epochs=1"])
    """
    args = _parser().parse_args(argv)
    _set_backend(getattr(args, "backend", None))
    from kemo.run.manifest import set_command

    set_command(["kemo", *(sys.argv[1:] if argv is None else argv)])  # for run.json
    from kemo.errors import InputError
    from kemo.interrupt import catch_interrupts, interrupt_requested
    from kemo.native_logs import filtered_native_logs
    from kemo.log import to_console

    to_console()  # library code logs (kemo.log); a command shows its info and warnings

    try:
        with catch_interrupts(), filtered_native_logs():
            code = COMMANDS[args.command].run(args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return multiprocess.leave(2)
    except KeyboardInterrupt:  # Ctrl-C: the last checkpoint stands; --resume continues
        return multiprocess.leave(130)
    except Exception as e:  # a process of several: one line if a peer was lost, then exit
        lost = multiprocess.lost_peer(e)
        if lost is None:
            if not multiprocess.active():
                raise
            import traceback

            traceback.print_exc()
            return multiprocess.leave(1)
        print(f"error: {lost}", file=sys.stderr)
        return multiprocess.leave(1)
    if interrupt_requested():  # a Ctrl-C some library swallowed: still not a clean exit
        print("interrupted (Ctrl-C)", file=sys.stderr)
        return multiprocess.leave(130)
    return code


def run_as_script(*command: str) -> None:
    """What each `scripts/<command>.py` does: `kemo <command...> ARGS...`, then exit.

    Example (the whole of scripts/train.py, bar its docstring):
        if __name__ == "__main__":
            run_as_script("train")
    """
    sys.exit(main([*command, *sys.argv[1:]]))
