"""`kemo runs`: the runs under a folder, one line each (kemo/run/listing.py).

Light: reads `run.json`, `config.toml`, `report.json` and `history.json`; imports no
framework. Runs written before `run.json` existed are listed from their other files.

Example:
    kemo runs runs/ --json
"""

from __future__ import annotations

import json

from kemo.run.listing import format_runs, list_runs


def add_parser(sub):
    r = sub.add_parser("runs", help="list the runs under a folder: date, config, languages, "
                       "epochs, validation and dev macro-F1, size, finished or not")
    r.add_argument("folder", nargs="?", default="runs",
                   help="a folder of run directories, or one run directory (default: runs)")
    r.add_argument("--json", action="store_true",
                   help="one JSON array of run summaries instead of the table")


def main(args) -> int:
    rows = list_runs(args.folder)
    if args.json:
        print(json.dumps(rows, indent=1))
    elif rows:
        print(format_runs(rows))
    else:
        print(f"no runs in {args.folder} (a run is a folder with config.toml)")
    return 0
