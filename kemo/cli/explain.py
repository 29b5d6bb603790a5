"""`kemo explain`: LIME explanations of a run's predictions as HTML and PNG (kemo/explain.py).

Example:
    kemo explain runs/tiny --text "I can't stop smiling today" --num-samples 200
"""

from __future__ import annotations

from pathlib import Path

from kemo.cli.args import BACKENDS, BATCH_MAX, SEED_MAX, check_utf8, int_in
from kemo.run import layout as L


def add_parser(sub):
    backend = dict(choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")
    x = sub.add_parser("explain", help="LIME explanations (HTML + PNG) of a run's predictions")
    x.add_argument("run_dir", help="a run directory written by kemo train")
    x.add_argument("--text", action="append", default=[], help="a text to explain (repeatable)")
    x.add_argument("--csv", default=None, help="explain every row of a CSV with id,text")
    x.add_argument("--out", default=None, help="output folder (default <run_dir>/explanations): "
                   "new, empty, or an earlier kemo explain's (replaced); any other folder "
                   "is refused and left as it is")
    x.add_argument("--num-samples", type=int_in(10, 100_000), default=500,
                   help="LIME perturbations per text, 10..100000 (default 500)")
    x.add_argument("--num-features", type=int_in(1, 1000), default=10,
                   help="words shown per label, 1..1000 (default 10)")
    x.add_argument("--batch-size", type=int_in(1, BATCH_MAX), default=256,
                   help=f"perturbed texts per model call, 1..{BATCH_MAX} (default 256)")
    x.add_argument("--seed", type=int_in(0, SEED_MAX), default=0,
                   help=f"LIME's sampling seed, 0..{SEED_MAX} (default 0)")
    x.add_argument("--backend", **backend)


def run(args) -> int:
    from kemo.errors import InputError
    from kemo.explain import EXPLANATIONS_DIR, explain_many
    from kemo.prediction.input_files import read_texts_csv

    if bool(args.text) == bool(args.csv):
        raise InputError("give either --text (repeatable) or --csv FILE with columns id,text")
    check_utf8(args.text)
    if args.csv:
        df = read_texts_csv(args.csv)
        items = list(zip(df["id"], df["text"]))
    else:
        items = [(f"text_{i + 1}", t) for i, t in enumerate(args.text)]
    out = Path(args.out) if args.out else Path(args.run_dir) / L.EXPLANATIONS
    EXPLANATIONS_DIR.check(out, legacy_ok=not args.out)  # before the model loads
    from kemo.prediction.predictor import load_predictor

    from kemo.evaluation.intensity_finish import refuse_intensity_run

    refuse_intensity_run(args.run_dir, "explain")
    run = load_predictor(args.run_dir)
    for ex in explain_many(run, items, out, source=args.csv or "--text", legacy_ok=not args.out,
                           num_samples=args.num_samples,
                           num_features=args.num_features, batch_size=args.batch_size,
                           seed=args.seed):
        print(ex.summary())
    print(f"wrote {out}")
    return 0
