"""`kemo predict`: a run's probabilities and 0/1 labels for files, a split or texts
(kemo/prediction/input_files.py).

Where the outputs go (`--out` overrides): `--split X` writes `<run>/predictions/X/`
(pred_<lang>.csv, probs_<lang>.csv, submission.zip: training already keeps its dev files
in `predictions/dev/`), CSV files given by name write `<run>/predictions/files/`. A file
already there is never replaced without `--overwrite` (one `error:` line, exit 2), so a
dev prediction cannot silently replace the test submission. A labelled split (dev,
train) is scored at once: the official macro-F1 per language and their mean.

Example:
    kemo predict runs/tiny --split test --languages eng   # predictions/test/pred_eng.csv, submission.zip
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from kemo.cli.args import BACKENDS, BATCH_MAX, DATA_DIR_HELP, check_utf8, int_in, intermixed
from kemo.config import load_config
from kemo.errors import InputError
from kemo.owned_dir import check_output
from kemo.run import layout as L
from kemo.run.ensemble_file import is_ensemble_dir
from kemo.run.lock import writing_into
from kemo.run.manifest import recorded_data_dir
from kemo.run.predictions_marker import mark_written, written_here


def add_parser(sub):
    backend = dict(choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")
    data_dir = dict(default=None, help=DATA_DIR_HELP)
    p = sub.add_parser("predict", help="probabilities and 0/1 labels (tuned thresholds) for "
                       "CSV files or texts; Track A files give pred_<lang>.csv + submission.zip")
    intermixed(p)  # `kemo predict RUN --out DIR FILE.csv`: options before the files
    p.add_argument("run_dir", help="a run directory written by kemo train")
    p.add_argument("files", nargs="*", help="Track A <lang>.csv files and/or plain id,text CSVs")
    p.add_argument("--json", action="store_true", help="with --text: print one JSON object "
                   "per line ({text, labels, probabilities, thresholds}) instead of the table")
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
    p.add_argument("--out", default=None, help="output folder (default: "
                   "<run_dir>/predictions/<split> with --split, <run_dir>/predictions/files "
                   "for FILES)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace prediction files an earlier predict (or training, for "
                   "dev) wrote in the output folder (default: refuse)")
    p.add_argument("--untrained-labels", choices=("error", "zero"), default="error",
                   help="a language label the model was not trained on: refuse (default) "
                   "or write 0")
    p.add_argument("--batch-size", type=int_in(1, BATCH_MAX), default=64,
                   help=f"texts per model call, 1..{BATCH_MAX} (default 64)")
    p.add_argument("--backend", **backend)


def main(args) -> int:
    from kemo.prediction.predictor import load_predictor
    from kemo.prediction import input_files as submission

    if args.json and not args.text:
        raise InputError("--json goes with --text (files and splits are written as CSV)")
    if not (args.files or args.split or args.text):
        raise InputError("nothing to predict: give CSV files, --split (with --languages), "
                         "or --text")
    if args.languages and not args.split:
        raise InputError("--languages goes with --split (e.g. --split test --languages eng)")
    if args.split and args.files and not args.out:
        raise InputError(f"--split {args.split} and FILES write to different folders "
                         f"(predictions/{args.split}/ and predictions/files/): predict them in "
                         "separate calls, or give --out")
    check_utf8(args.text)
    empty = [k for k, t in enumerate(args.text) if not t.strip()]
    if empty:
        raise InputError(f"--text: text {empty[0] + 1} is empty: give the text to classify")
    tokens = _tokens(args) if args.tokens else None
    config = _run_config(args.run_dir)  # None: load_predictor says what is wrong
    run = None if config else load_predictor(args.run_dir)
    config = config or run.config
    if config.data.layout != "track_a" and (args.split or args.files):
        run = run or load_predictor(args.run_dir)
        args.files = _predict_dataset_files(args, run)  # those in the dataset's own shape
        args.split = None  # done; plain id,text FILES (if any) go on below
        if not args.files and not args.text:
            return 0
    paths = list(args.files)
    if args.split:
        paths += submission.split_files(args.data_dir, args.split,
                                        args.languages or config.data.languages,
                                        configured=config.data.data_dir,
                                        recorded=recorded_data_dir(args.run_dir))
    k = config.data.max_intensity if config.data.label_kind == "intensity" else 1
    inputs = [submission.read_input_file(p, k) for p in paths]  # all checked before the model runs
    out = _out_dir(args, Path(args.run_dir))
    if inputs:  # before the model loads: an answer in a second
        _refuse_overwrite(inputs, out, args)
    run = run or load_predictor(args.run_dir)
    if tokens:
        tokens.check_tokenizer(run.path / L.PREPROCESSOR)
    for inp in inputs:
        blank = [inp.ids[k] for k, t in enumerate(inp.texts) if not str(t).strip()]
        if blank:
            print(f"warning: {inp.path}: {len(blank)} empty text(s) (id {', '.join(blank[:3])}"
                  f"{', ...' if len(blank) > 3 else ''}): predicted as given", file=sys.stderr)
    if args.text:
        probs, dec = run.predict(args.text, args.batch_size)
        if getattr(run, "intensity", False):
            print(submission.format_text_intensities(args.text, run.label_names, probs, dec,
                                                     as_json=args.json))
        elif args.json:
            print(submission.text_predictions_json(args.text, run.label_names, probs, dec,
                                                   run.thresholds.thresholds))
        else:
            print(submission.format_text_predictions(args.text, run.label_names, probs, dec,
                                                     run.thresholds.thresholds))
    if paths:
        with writing_into(run.path, out):  # one writer of a run directory at a time
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
        _say_what_zip_holds(result, inputs)
        if args.split in ("dev", "train") and not args.files:
            _print_score(result["files"], paths[0].parent, args.split,
                         run.config.data.max_intensity if getattr(run, "intensity", False)
                         else 0)
    return 0


def _run_config(run_dir):
    """The run's config.toml (light: no model), or None when it cannot be read (then
    loading the run names the fault)."""
    try:
        return load_config(Path(run_dir) / L.CONFIG)
    except (InputError, OSError):
        return None


def _say_what_zip_holds(result, inputs) -> None:
    """When submission.zip holds more languages than this call predicted (earlier
    predictions of the same run in that folder), say which."""
    now = {f"pred_{i.lang}.csv" for i in inputs if i.is_track_a}
    earlier = [n for n in result.get("zipped", []) if n not in now]
    if result["zip"] is not None and earlier:
        langs = lambda names: ", ".join(n[5:-4] for n in names)  # noqa: E731
        print(f"note: {result['zip'].name} holds {langs(result['zipped'])}: "
              f"{langs(sorted(now))} predicted now, {langs(earlier)} by an earlier predict "
              "of this run into the same folder", file=sys.stderr)


def _out_dir(args, run_path: Path) -> Path:
    """--out, else <run>/predictions/<split> (--split) or <run>/predictions/files."""
    if args.out:
        return Path(args.out)
    return run_path / L.PREDICTIONS / (args.split or "files")


def _refuse_overwrite(inputs, out: Path, args) -> None:
    """Before the model runs: refuse when a file predict would write is already in `out`
    (unless --overwrite), naming it and the two ways on."""
    from kemo.prediction.input_files import ZIP_NAME

    names = []
    for inp in inputs:
        if inp.is_track_a:
            names += [f"pred_{inp.lang}.csv", f"probs_{inp.lang}.csv"]
        else:
            names.append(f"{inp.path.stem}.predictions.csv")
    if any(inp.is_track_a for inp in inputs):
        names.append(ZIP_NAME)
    ours = written_here(out)
    mine = str(Path(args.run_dir).resolve())
    # this run's own zip is rebuilt to hold every language it predicted there: no loss
    there = [n for n in names if os.path.lexists(out / n)
             and not (n == ZIP_NAME and ours.get(n) == mine)]
    foreign = [n for n in there if n not in ours]
    if foreign or (there and not args.overwrite):
        name = (foreign or there)[0]
        n = len(foreign or there)
        more = f", and {n - 1} more" if n > 1 else ""
        hint = ""
        if args.split == "dev" and not args.out and not foreign:
            hint = (f"; training wrote these dev predictions: `kemo evaluate {out} --split dev`"
                    " scores them")
        check_output(out / name, "predict output", name in ours, args.overwrite,
                     detail=more, instead=f"another folder with --out{hint}")


def _print_score(files, gold_dir: Path, split: str, max_intensity: int = 0) -> None:
    """The official macro-F1 (Track B: Pearson r) of the pred_<lang>.csv just written
    against their gold files, per language, then the mean over languages (the shared
    task's number)."""
    from kemo.evaluation.scoring import format_scores, score_submission

    preds = [f for f in files if Path(f).name.startswith("pred_")]
    scores = score_submission(preds, gold_dir, max_intensity=max_intensity)
    print(format_scores(scores))
    o = scores["overall"]
    n = o["languages"]
    if max_intensity:
        print(f"{split} Pearson r{'' if n == 1 else f', mean over {n} languages'}: "
              f"{o['pearson_r']:.4f} (kemo evaluate --max-intensity {max_intensity} "
              "scores the same files)")
        return
    what = "macro-F1" if n == 1 else f"macro-F1, mean over {n} languages"
    print(f"{split} {what}: {o['macro_f1']:.4f} (kemo evaluate scores the same files)")


def _tokens(args):
    """`predict --tokens CACHE`: the cache, checked; refused with --text or an ensemble."""
    from kemo.data.token_cache import TokenCache

    if args.text:
        raise InputError("--tokens holds the tokens of data files: --text needs tokenising "
                         "(predict it without --tokens)")
    if is_ensemble_dir(Path(args.run_dir)):
        raise InputError(f"--tokens: {args.run_dir} is an ensemble, whose members tokenise "
                         "with their own tokenizers (predict it without --tokens)")
    return TokenCache.load(args.tokens)


def _predict_dataset_files(args, run) -> list:
    """A run trained on a table dataset: `--split X` (the split's file) and every FILE in
    the dataset's format, written in the dataset's own shape and label encoding with
    `<name>.probs.csv` and `<name>.labels.csv` (id + 0/1 columns) beside it
    (`kemo.prediction.dataset_files`); a labelled split is
    scored at once. Returns the FILES left for the plain id,text route."""
    from kemo.data.dataset import open_dataset
    from kemo.data.examples import align_labels
    from kemo.data.table import FORMATS, table_format
    from kemo.evaluation.dataset_scoring import score_dataset_predictions
    from kemo.evaluation.scoring import format_scores
    from kemo.prediction.dataset_files import prediction_names, write_dataset_predictions

    if args.languages or args.tokens:
        raise InputError("--languages and --tokens go with Track A runs; this run's dataset is "
                         "a table (data.layout = \"table\")")
    dataset = open_dataset(run.config.data, args.data_dir, recorded_data_dir(run.path))
    own = table_format(dataset.path("train"), dataset.data.format)
    files = [Path(f) for f in args.files]
    shaped = [f for f in files if FORMATS.get(f.suffix.lower()) == own]
    sources = ([args.split] if args.split else []) + shaped
    if args.split and not dataset.has(args.split):
        raise InputError(f"{run.path / L.CONFIG}: config key 'data.{args.split}_file' is empty "
                         f"(the dataset has no {args.split} split)")
    read = [dataset.read(src) for src in sources]  # every input checked before predicting
    out = _out_dir(args, run.path)
    ours = written_here(out)  # the one rule: kemo's own files, with --overwrite
    for src in sources:
        for name in prediction_names(dataset, src):
            check_output(out / name, "predict output", str(name) in ours, args.overwrite,
                         instead="another folder with --out")
    for src, ex in zip(sources, read):
        ex = align_labels(ex, run.label_names) if ex.label_names != tuple(run.label_names) else ex
        with writing_into(run.path, out):
            probs, dec = run.predict(ex.texts.tolist(), args.batch_size, langs=ex.langs.tolist())
            written = write_dataset_predictions(out, dataset, src, ex, probs, dec)
            mark_written(out, written, run.path)
        for f in written:
            print(f"wrote {f}")
        if ex.has_labels:
            scores = score_dataset_predictions(written[0], dataset, src, run.label_names)
            print(format_scores(scores))
            print(f"{src} macro-F1 over all rows: {scores['overall']['all_rows']:.4f} "
                  f"(kemo evaluate {written[0]} --config {run.path} --split {src})")
    return [f for f in files if f not in shaped]
