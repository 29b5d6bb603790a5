"""The `kemo` command. `scripts/*.py` are thin wrappers over its subcommands.

    kemo train --backend jax --config configs/tiny.toml [--set train.epochs=2]
               [--data-dir DIR] [--run-dir DIR]

Bad input (config, data, preset, run directory) prints one `error: ...` line naming
the file, row and column or the config key, and exits with code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

BACKENDS = ("jax", "tensorflow", "torch")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kemo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train, tune thresholds and report from a config")
    t.add_argument("--config", required=True, help="a TOML file in configs/")
    t.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    t.add_argument("--data-dir", default=None,
                   help="Track A root holding train/ dev/ test/ (default: $KEMO_DATA_DIR)")
    t.add_argument("--run-dir", default=None,
                   help="where everything the run writes goes (default runs/<config>-<time>)")
    t.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    return parser


def _set_backend(name: str | None):
    os.environ["KERAS_BACKEND"] = name or os.environ.get("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _train(args) -> int:
    from kemo.config import load_config
    from kemo.training import train

    cfg = load_config(args.config, args.set)
    run_dir = args.run_dir or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    train(cfg, data_dir=args.data_dir, run_dir=run_dir, verbose=0 if args.quiet else 2)
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    _set_backend(getattr(args, "backend", None))
    from kemo.errors import InputError

    try:
        return {"train": _train}[args.command](args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
