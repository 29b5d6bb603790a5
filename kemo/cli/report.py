"""`kemo report`: a run's HTML page with plots (kemo/evaluation/run_page.py); the run
directory is only read, the page folder written.

Example:
    kemo report runs/tiny    # runs/tiny/report/index.html
"""

from __future__ import annotations

import sys

from kemo.cli.args import BACKENDS, DATA_DIR_HELP


def add_parser(sub):
    backend = dict(choices=BACKENDS, default=None,
                   help="Keras backend (default: $KERAS_BACKEND or jax)")
    data_dir = dict(default=None, help=DATA_DIR_HELP)
    r = sub.add_parser("report", help="an HTML report with plots for a run "
                       "(<run_dir>/report/index.html)")
    r.add_argument("run_dir", help="a run directory written by kemo train")
    r.add_argument("--data-dir", **data_dir)
    r.add_argument("--out", default=None, help="output folder (default <run_dir>/report)")
    r.add_argument("--backend", **backend)


def run(args) -> int:
    from kemo.evaluation.result_text import format_console_report
    from kemo.evaluation.run_page import make_run_page

    from pathlib import Path

    from kemo.run import layout as L
    from kemo.run.lock import writing_into

    out = Path(args.out) if args.out else Path(args.run_dir) / L.REPORT_DIR
    if _is_intensity_run(args.run_dir):  # Track B: Pearson r and confusion tables
        from kemo.evaluation.intensity_page import make_intensity_page
        from kemo.evaluation.result_text import format_intensity_table

        with writing_into(args.run_dir, out):
            result = make_intensity_page(args.run_dir, out_dir=args.out)
        print(format_intensity_table(result.report) + "\n")
        print(f"wrote {result.path}")
        return 0
    with writing_into(args.run_dir, out):  # one writer of a run directory at a time
        result = make_run_page(args.run_dir, data_dir=args.data_dir, out_dir=args.out)
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    if result.report:
        print(format_console_report(result.report) + "\n")
    print(f"wrote {result.path}")
    return 0


def _is_intensity_run(run_dir) -> bool:
    """Whether the run's config.toml says data.label_kind = "intensity" (an unreadable
    config: False, and the page's own reading names the fault)."""
    from pathlib import Path

    from kemo.config import load_config
    from kemo.errors import InputError
    from kemo.run import layout as L

    try:
        return load_config(Path(run_dir) / L.CONFIG).data.label_kind == "intensity"
    except (InputError, OSError):
        return False
