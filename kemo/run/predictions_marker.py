"""Which files kemo wrote in a folder of predictions (`<run>/predictions/<split>/`, or
`kemo predict --out`), and for which run: the folder's marker, `.kemo-predictions`.

The rule of `kemo.owned_dir.check_output`: `--overwrite` replaces only these; the run
directory's verdict (`kemo.run.verdict`) reads the same marker.

Example:
    mark_written("runs/tiny/predictions/test", ["pred_eng.csv"], "runs/tiny")
    written_here("runs/tiny/predictions/test")   # {'pred_eng.csv': '/abs/runs/tiny'}
"""

from __future__ import annotations

import json
from pathlib import Path

from kemo.atomic import write_text
from kemo.run import layout as L

# In each output folder: which files kemo wrote there, and for which run (the rule of
# `kemo.owned_dir.check_output`: --overwrite replaces only these).
MARKER = ".kemo-predictions"


def written_here(out_dir) -> dict[str, str]:
    """The files kemo's predict (or training, for `predictions/dev`) wrote in `out_dir`:
    name -> the run that wrote it. A folder `<run>/predictions/<x>` of an older kemo,
    unmarked, is that run's."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return {}
    try:
        d = json.loads((out_dir / MARKER).read_text(encoding="utf-8"))
        files = d["files"]
        if d.get("kemo") == "predictions" and isinstance(files, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
            return dict(files)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    run = out_dir.resolve().parents[1] if len(out_dir.resolve().parents) > 1 else None
    if out_dir.resolve().parent.name == L.PREDICTIONS and run and (run / L.CONFIG).is_file():
        return {p.name: str(run) for p in out_dir.iterdir() if not p.name.startswith(".")}
    return {}


def mark_written(out_dir, names, run_path) -> None:
    """Record `names` in `out_dir`'s marker as written by the run `run_path`."""
    files = written_here(out_dir) | {Path(n).name: str(Path(run_path).resolve()) for n in names}
    write_text(Path(out_dir) / MARKER, json.dumps({"kemo": "predictions", "files": files},
                                                  indent=1))
