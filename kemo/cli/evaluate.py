"""`kemo evaluate`: the official Track A scorer over pred_<lang>.csv files (kemo/evaluation/scoring.py).

Example:
    kemo evaluate runs/tiny/predictions/dev --split dev
"""

from __future__ import annotations

from pathlib import Path

from kemo.atomic import write_text
from kemo.cli.args import DATA_DIR_HELP, intermixed
from kemo.config import load_config
from kemo.errors import InputError
from kemo.owned_dir import check_output
from kemo.run import layout as L
from kemo.run.manifest import recorded_data_dir


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
    e.add_argument("--max-intensity", type=int, default=0, metavar="K",
                   help="Track B: the cells are intensities 0..K (3 for Track B), scored "
                   "by Pearson r per emotion, averaged over emotions then languages "
                   "(default 0: Track A's 0/1 labels and macro-F1)")
    e.add_argument("--json", default=None, help="also write the scores to this JSON file "
                   "(new, or one kemo evaluate wrote, with --overwrite)")
    e.add_argument("--overwrite", action="store_true",
                   help="replace the --json file an earlier kemo evaluate wrote (never "
                   "another file)")
    e.add_argument("--config", default=None, metavar="CONFIG_OR_RUN",
                   help="a dataset other than Track A: the config (or run directory) whose "
                   "[data] describes it; PREDICTIONS is then one file in the dataset's own "
                   "shape (what kemo predict writes) or a CSV of id + one 0/1 column per label")


SCORES_FORMAT = "kemo evaluate scores"  # the --json file's `format`: kemo wrote it


def is_scores_file(path) -> bool:
    """Whether `path` is a scores file `kemo evaluate --json` wrote (its `format`)."""
    import json

    try:
        d = json.loads(Path(path).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(d, dict) and d.get("format") == SCORES_FORMAT


def main(args) -> int:
    import json

    from kemo.data.brighter import resolve_data_dir
    from kemo.evaluation.scoring import format_scores, score_submission

    if args.json:  # before anything is read: never over a file kemo did not write
        check_output(args.json, "--json", is_scores_file(args.json), args.overwrite,
                     instead="another --json file")
    if args.config:
        gold, scores = _score_dataset(args)
    else:
        gold = Path(args.gold) if args.gold else resolve_data_dir(args.data_dir) / args.split
        preds = args.predictions[0] if len(args.predictions) == 1 else args.predictions
        scores = score_submission(preds, gold, args.languages, _max_intensity(args))
    if args.json:  # written before anything is printed: an error here is the only output
        out = Path(args.json)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            # whole or not at all; `format` marks it as kemo's (--overwrite replaces it)
            write_text(out, json.dumps({"format": SCORES_FORMAT, **scores}, indent=1))
        except OSError as e:
            where = f": {e.filename}" if e.filename and str(e.filename) != str(out) else ""
            raise InputError(f"--json {out}: cannot write ({e.strerror or e}{where})") from None
    print(f"gold: {gold}")
    print(format_scores(scores))
    if "pearson_r" in scores["overall"]:
        print(f"Track B: mean over languages of Pearson r: {scores['overall']['pearson_r']:.4f}")
    if "all_rows" in scores["overall"]:
        print(f"macro-F1 over all rows: {scores['overall']['all_rows']:.4f}")
    if args.json:
        print(f"wrote {args.json}")
    return 0


def _max_intensity(args) -> int:
    """`--max-intensity`, checked (0: Track A)."""
    if not 0 <= args.max_intensity <= 100:
        raise InputError(f"--max-intensity: expected 0 (Track A) to 100, got {args.max_intensity}")
    return args.max_intensity


def _score_dataset(args):
    """(gold file, scores) of one prediction file against the split of the dataset that
    `--config` (a config file or a run directory) describes."""
    from kemo.data.dataset import open_dataset
    from kemo.evaluation.dataset_scoring import score_dataset_predictions
    from kemo.evaluation.scoring import score_submission

    if len(args.predictions) != 1 or args.gold or args.languages:
        raise InputError("--config: give one prediction file (no --gold, no --languages)")
    config = Path(args.config)
    cfg = load_config(config / L.CONFIG if config.is_dir() else config)
    dataset = open_dataset(cfg.data, args.data_dir,
                           recorded_data_dir(config) if config.is_dir() else None)
    if not dataset.has(args.split):
        raise InputError(f"{config}: config key 'data.{args.split}_file' is empty (the "
                         f"dataset has no {args.split} split)")
    if dataset.layout == "track_a":
        k = cfg.data.max_intensity if cfg.data.label_kind == "intensity" else 0
        scores = score_submission(args.predictions[0], dataset.root / args.split,
                                  dataset.languages, k)
        return dataset.root / args.split, scores
    return dataset.path(args.split), score_dataset_predictions(args.predictions[0], dataset,
                                                               args.split)
