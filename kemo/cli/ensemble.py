"""`kemo ensemble`: finished runs averaged into one run (kemo/ensemble.py).

Example:
    kemo ensemble runs/minilm runs/e5 --run-dir runs/ens
"""

from __future__ import annotations

from kemo.cli.args import BACKENDS, BATCH_MAX, DATA_DIR_HELP, finite_at_least, int_in
from kemo.evaluation.ensemble_tables import format_ensemble_report
from kemo.run.verdict import check_new_run_dir


def add_parser(sub):
    x = sub.add_parser(
        "ensemble", help="average finished runs' probabilities into one run, thresholds "
        "re-tuned on their shared validation split; members may cover different languages",
        description="Example: kemo ensemble runs/minilm runs/e5 --run-dir runs/ens && "
                    "kemo predict runs/ens --split test")
    x.add_argument("members", nargs="+", help="run directories written by kemo train: "
                   "runs of the same languages validated on the same rows (same data "
                   "settings and data.split_seed); runs of different languages are averaged "
                   "per language over the members trained on it")
    x.add_argument("--run-dir", required=True, help="the ensemble's run directory (new or "
                   "empty; with --overwrite, a run kemo wrote)")
    x.add_argument("--overwrite", action="store_true",
                   help="replace --run-dir when it holds an ensemble or run kemo wrote "
                   "(finished, or cut short); never a folder holding anything else")
    w = x.add_mutually_exclusive_group()
    w.add_argument("--weights", nargs="+", type=finite_at_least(0), default=None,
                   help="one weight per member (default: equal); normalised to sum to 1")
    w.add_argument("--search-weights", nargs="?", type=finite_at_least(0), const=0.1,
                   default=None, metavar="STEP",
                   help="search the weights on the validation split instead: every weighting "
                   "on a grid of STEP (default 0.1; each member at least one step) is scored "
                   "by validation macro-F1 with thresholds re-tuned; dev is not looked at. "
                   "ensemble.json keeps every candidate's score")
    x.add_argument("--serve", choices=("average", "specialist"), default="average",
                   help="which members serve a text of language L: every member trained on "
                   "L, averaged (default), or only those trained on the fewest languages "
                   "(specialist: runs fine-tuned on L alone, e.g. by kemo finetune, serve L "
                   "instead of the multilingual run they started from)")
    x.add_argument("--data-dir", default=None,
                   help=DATA_DIR_HELP)
    x.add_argument("--batch-size", type=int_in(1, BATCH_MAX), default=64,
                   help=f"texts per model call when predicting the members on validation "
                   f"and dev, 1..{BATCH_MAX} (default 64)")
    x.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")


def main(args) -> int:
    from pathlib import Path

    check_new_run_dir(Path(args.run_dir), args.overwrite, command="ensemble")  # at once
    from kemo.evaluation.intensity_finish import refuse_intensity_run

    for member in args.members:
        refuse_intensity_run(member, "ensemble")
    from kemo.ensemble import build_ensemble

    report = build_ensemble(args.members, args.run_dir, args.weights, args.data_dir,
                            args.batch_size, args.overwrite, args.serve,
                            search_step=args.search_weights)
    print(format_ensemble_report(report))
    print(f"\nrun directory: {args.run_dir}")
    return 0
