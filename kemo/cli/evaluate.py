"""`kemo evaluate`: the official Track A scorer over pred_<lang>.csv files (kemo/evaluation/scoring.py).

Example:
    kemo evaluate runs/tiny/predictions/dev --split dev
"""

from __future__ import annotations

from pathlib import Path

from kemo.cli.args import DATA_DIR_HELP, intermixed


def add_parser(sub):
    data_dir = dict(default=None, help=DATA_DIR_HELP)
    e = sub.add_parser("evaluate", help="score pred_<lang>.csv files against gold labels "
                       "(the official SemEval-2025 Task 11 Track A scorer)")
    intermixed(e)  # options may come between the files
    e.add_argument("predictions", nargs="+",
                   help="a submission zip, a folder of pred_<lang>.csv, or the files")
    e.add_argument("--gold", default=None,
                   help="folder of gold <lang>.csv files (default <data-dir>/<split>)")
    e.add_argument("--split", choices=("train", "dev"), default="dev",
                   help="whose gold labels score the predictions: <data-dir>/<split>/ "
                   "(default dev; test has no labels; ignored with --gold)")
    e.add_argument("--data-dir", **data_dir)
    e.add_argument("--languages", nargs="+", default=None,
                   help="languages that must be scored (default: every one predicted)")
    e.add_argument("--json", default=None, help="also write the scores to this JSON file "
                   "(new, or one kemo evaluate wrote, with --overwrite)")
    e.add_argument("--overwrite", action="store_true",
                   help="replace the --json file an earlier kemo evaluate wrote (never "
                   "another file)")


SCORES_FORMAT = "kemo evaluate scores"  # the --json file's `format`: kemo wrote it


def is_scores_file(path) -> bool:
    """Whether `path` is a scores file `kemo evaluate --json` wrote (its `format`)."""
    import json

    try:
        d = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and d.get("format") == SCORES_FORMAT


def run(args) -> int:
    import json

    from kemo.atomic import write_text
    from kemo.data.brighter import resolve_data_dir
    from kemo.errors import InputError
    from kemo.evaluation.scoring import format_scores, score_submission

    from kemo.owned_dir import check_output

    if args.json:  # before anything is read: never over a file kemo did not write
        check_output(args.json, "--json", is_scores_file(args.json), args.overwrite,
                     instead="another --json file")
    gold = Path(args.gold) if args.gold else resolve_data_dir(args.data_dir) / args.split
    preds = args.predictions[0] if len(args.predictions) == 1 else args.predictions
    scores = score_submission(preds, gold, args.languages)
    if args.json:  # written before anything is printed: an error here is the only output
        out = Path(args.json)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_text(out, json.dumps({"format": SCORES_FORMAT, **scores}, indent=1))  # whole or not at all
        except OSError as e:
            where = f": {e.filename}" if e.filename and str(e.filename) != str(out) else ""
            raise InputError(f"--json {out}: cannot write ({e.strerror or e}{where})") from None
    print(f"gold: {gold}")
    print(format_scores(scores))
    if args.json:
        print(f"wrote {args.json}")
    return 0
