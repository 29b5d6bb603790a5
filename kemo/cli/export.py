"""`kemo export`: a run as model.keras and a raw-text TF SavedModel (kemo/serving/export.py).

Example:
    kemo export runs/tiny --out /tmp/kemo-export
"""

from __future__ import annotations

import os

from kemo.cli.args import BACKENDS, BATCH_MAX, int_in


def add_parser(sub):
    x = sub.add_parser("export", help="export a run for serving: model.keras and a raw-text "
                       "TF SavedModel (raw text in, probabilities and decisions out, thresholds "
                       "baked in; served by TensorFlow alone)")
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


def run(args) -> int:
    from kemo.serving.export import check_export_backend, export_run

    check_export_backend(os.environ["KERAS_BACKEND"])  # refused before Keras loads
    export_run(args.run_dir, args.out, benchmark=not args.no_benchmark,
               batch_size=args.batch_size, repeats=args.repeats)
    return 0
