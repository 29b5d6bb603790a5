"""`kemo predict`: a run's probabilities and 0/1 labels for files, a split or texts (kemo/submission.py).

Example:
    kemo predict runs/tiny --split test --languages eng   # pred_eng.csv, submission.zip
"""

from __future__ import annotations

import sys
from pathlib import Path

from kemo.cli.args import BACKENDS, BATCH_MAX, DATA_DIR_HELP, int_in


def add_parser(sub):
    backend = dict(choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")
    data_dir = dict(default=None, help=DATA_DIR_HELP)
    p = sub.add_parser("predict", help="probabilities and 0/1 labels (tuned thresholds) for "
                       "CSV files or texts; Track A files give pred_<lang>.csv + submission.zip")
    p.add_argument("run_dir", help="a run directory written by kemo train")
    p.add_argument("files", nargs="*", help="Track A <lang>.csv files and/or plain id,text CSVs")
    p.add_argument("--text", action="append", default=[], help="a text to classify; the "
                   "result is printed (repeatable)")
    p.add_argument("--split", choices=("train", "dev", "test"), default=None,
                   help="predict <data-dir>/<split>/<lang>.csv for --languages")
    p.add_argument("--languages", nargs="+", default=None,
                   help="with --split: language codes (default: the run's languages)")
    p.add_argument("--data-dir", **data_dir)
    p.add_argument("--tokens", metavar="CACHE", default=None,
                   help="take the files' tokens from a token cache of the run's tokenizer "
                   "(kemo tokenize, or <run_dir>/tokens): no TensorFlow needed")
    p.add_argument("--out", default=None, help="output folder (default <run_dir>/predictions)")
    p.add_argument("--untrained-labels", choices=("error", "zero"), default="error",
                   help="a language label the model was not trained on: refuse (default) "
                   "or write 0")
    p.add_argument("--batch-size", type=int_in(1, BATCH_MAX), default=64,
                   help=f"texts per model call, 1..{BATCH_MAX} (default 64)")
    p.add_argument("--backend", **backend)


def run(args) -> int:
    from kemo.errors import InputError
    from kemo.runs import load_run
    from kemo import submission

    if not (args.files or args.split or args.text):
        raise InputError("nothing to predict: give CSV files, --split (with --languages), "
                         "or --text")
    if args.languages and not args.split:
        raise InputError("--languages goes with --split (e.g. --split test --languages eng)")
    tokens = _tokens(args) if args.tokens else None
    run = load_run(args.run_dir)
    if tokens:
        tokens.check_tokenizer(run.path / "preprocessor")
    paths = list(args.files)
    if args.split:
        paths += submission.split_files(args.data_dir, args.split,
                                        args.languages or run.config.data.languages,
                                        configured=run.config.data.data_dir)
    inputs = [submission.read_input_file(p) for p in paths]  # all checked before the model runs
    if args.text:
        probs, dec = run.predict(args.text, args.batch_size)
        print(submission.format_text_predictions(args.text, run.label_names, probs, dec,
                                                 run.thresholds.thresholds))
    if paths:
        out = Path(args.out) if args.out else run.path / "predictions"
        result = submission.predict_files(run, inputs, out, args.untrained_labels,
                                          args.batch_size, tokens=tokens)
        for lang, labels in result["untrained"].items():
            print(f"warning: {lang}: {', '.join(labels)} not trained; written as 0",
                  file=sys.stderr)
        if result["zero_shot"]:
            print(f"note: {', '.join(result['zero_shot'])}: not among the run's training "
                  f"languages ({', '.join(run.config.data.languages)}): predicted zero-shot, "
                  "with the run's global thresholds", file=sys.stderr)
        for f in result["files"]:
            print(f"wrote {f}")
    return 0


def _tokens(args):
    """`predict --tokens CACHE`: the cache, checked; refused with --text or an ensemble."""
    from kemo.data.token_cache import TokenCache
    from kemo.ensemble import is_ensemble_dir
    from kemo.errors import InputError

    if args.text:
        raise InputError("--tokens holds the tokens of data files: --text needs tokenising "
                         "(predict it without --tokens)")
    if is_ensemble_dir(Path(args.run_dir)):
        raise InputError(f"--tokens: {args.run_dir} is an ensemble, whose members tokenise "
                         "with their own tokenizers (predict it without --tokens)")
    return TokenCache.load(args.tokens)
