"""Shared pieces of the `kemo` command line: argparse types, limits, the parser class.

Example:
    from kemo.cli.args import BATCH_MAX, int_in
    parser.add_argument("--batch-size", type=int_in(1, BATCH_MAX), default=64)
"""

from __future__ import annotations

import argparse
import os

from kemo.errors import InputError

BACKENDS = ("jax", "tensorflow", "torch")
BATCH_MAX = 2**16  # a padded batch of this many rows still fits in memory
SEED_MAX = 2**32 - 1  # what NumPy, TF and JAX seeds accept (as train.seed)
# One rule everywhere: kemo.data.brighter.resolve_data_dir.
DATA_DIR_HELP = ("Track A root holding train/ dev/ test/ (default: $KEMO_DATA_DIR, else "
                 "the config's data.data_dir)")


def int_in(low: int, high: int | None = None):
    """An argparse type: an integer in [low, high] (high None: no upper bound).

    Example:
        parser.add_argument("--seed", type=int_in(0, SEED_MAX), default=0)
    """
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            expected = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected an integer {expected}, got {text}")
        return value

    return parse


def finite_at_least(low: float):
    """An argparse type: a finite number >= `low`. Example: `type=finite_at_least(0)`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (value >= low and value < float("inf")):
            raise argparse.ArgumentTypeError(f"expected a finite number >= {low}, got {text}")
        return value

    return parse


def check_utf8(texts, flag: str = "--text") -> None:
    """Refuse a command-line text that is not valid UTF-8, in one line, as the same
    bytes in a file are (Python hands such argv bytes over as lone surrogates).

    Example:
        check_utf8(args.text)   # InputError: --text number 1: not valid UTF-8 (byte 3)
    """
    for k, text in enumerate(texts):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            byte = len(text[:e.start].encode("utf-8", "surrogateescape"))
            raise InputError(f"{flag} number {k + 1}: not valid UTF-8 (byte {byte}); give "
                             "the text in UTF-8") from None


class Parser(argparse.ArgumentParser):
    """argparse reporting a bad argument as kemo reports any bad input: one `error:`
    line on stderr, exit code 2 (no usage block, no traceback)."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())} "
                     f"(see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse's; then $KERAS_BACKEND, when no --backend overrides it, must name
        a backend kemo runs on (else Keras' import would end in a traceback)."""
        ns = super().parse_args(args, namespace)
        env = os.environ.get("KERAS_BACKEND")
        if getattr(ns, "backend", None) is None and env and env not in BACKENDS:
            self.exit(2, f"error: $KERAS_BACKEND={env!r}: not a backend kemo runs on "
                         f"(one of {', '.join(BACKENDS)}); unset it or pass --backend\n")
        return ns


def intermixed(parser):
    """Let `parser` (a subcommand's) take options between its positionals, as users type
    them: `kemo predict RUN --out DIR FILE.csv` (argparse's intermixed parsing; plain
    parsing ends a `nargs="*"` positional at the first option). Returns `parser`."""
    def parse_known_args(args=None, namespace=None):
        del parser.parse_known_args  # the class's own, for the intermixed parse itself
        try:
            return parser.parse_known_intermixed_args(args, namespace)
        finally:
            parser.parse_known_args = parse_known_args

    parser.parse_known_args = parse_known_args
    return parser


def add_workflow_options(parser, predicting: str) -> None:
    """The options every multi-run workflow (`finetune`, `crosslingual`) ends with: the
    data root, the prediction batch, quiet, the Keras backend. `predicting` says when
    the batch is used, e.g. "when the system is predicted".

    Example:
        add_workflow_options(sub.add_parser("finetune"), "when the system is predicted")
    """
    parser.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    parser.add_argument("--batch-size", type=int_in(1, BATCH_MAX), default=64,
                        help=f"texts per model call {predicting}, 1..{BATCH_MAX}")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend (default: $KERAS_BACKEND or jax)")
