"""`kemo crosslingual`: Track C, each language predicted by a run that never trained on
it: language folds or one training language set (kemo/crosslingual.py).

Example:
    kemo crosslingual --config configs/tiny.toml --folds 2 --out runs/track_c
"""

from __future__ import annotations

from kemo.cli.args import SEED_MAX, add_workflow_options, int_in
from kemo.default_config import resolve_config


def add_parser(sub):
    x = sub.add_parser(
        "crosslingual", help="Track C: train on the languages outside each language fold, "
        "predict the fold's languages zero-shot; the zero-shot table and submission zip",
        description="Partition the config's languages into --folds N folds (seeded, balanced "
                    "by training rows; N = the number of languages is leave-one-out), or "
                    "train once on --train-languages; one run per fold under --out; each "
                    "target's dev is scored zero-shot (macro-F1, thresholds tuned on the "
                    "training languages' validation rows) and its test predicted. Writes "
                    "<out>/zero_shot.csv, zero_shot.md, submission.zip (track_c/pred_<lang>"
                    ".csv) and crosslingual.json.")
    x.add_argument("--config", required=True, help="a TOML file, or a name in configs/; its "
                   "data.languages are the languages of the protocol")
    how = x.add_mutually_exclusive_group(required=True)
    how.add_argument("--folds", type=int_in(2), default=None, metavar="N",
                     help="language folds (2 .. the number of languages)")
    how.add_argument("--train-languages", nargs="+", default=None, metavar="LANG",
                     help="one training on these languages; every other language of the "
                     "config is a target (e.g. --train-languages eng)")
    x.add_argument("--out", required=True, help="a new or empty folder: one run directory "
                   "per fold (<out>/fold-1, ...) and the tables and zip")
    x.add_argument("--reference", default=None, metavar="RUN", help="a finished run trained "
                   "on every language: its per-language dev macro-F1 goes beside the "
                   "zero-shot figure")
    x.add_argument("--resume", action="store_true", help="continue the protocol in --out "
                   "(the same command): finished folds are kept, an unfinished one resumes")
    x.add_argument("--plan-only", action="store_true", help="print the folds (targets, "
                   "training rows) and stop: nothing is trained or written")
    x.add_argument("--seed", type=int_in(0, SEED_MAX), default=0,
                   help="the seed of the fold assignment (default 0)")
    x.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key of every fold's run (repeatable)")
    add_workflow_options(x, "when predicting")


def main(args) -> int:
    from kemo.crosslingual import crosslingual, format_plan, format_table, protocol_plan

    if args.plan_only:
        _, _, plan, rows = protocol_plan(resolve_config(args.config), args.folds,
                                         args.train_languages, args.reference, args.set,
                                         args.data_dir, args.seed)
        print(format_plan(plan, rows))
        return 0
    result = crosslingual(resolve_config(args.config), args.out, args.folds,
                          args.train_languages, args.reference, args.set, args.data_dir,
                          args.seed, args.resume, verbose=0 if args.quiet else 2,
                          batch_size=args.batch_size)
    print(format_table(result["rows"]))
    for path in [*result["tables"], result["zip"]]:
        print(f"wrote {path}")
    return 0
