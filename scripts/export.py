"""Export a run for serving: `python scripts/export.py runs/tiny [--out DIR]`.

Writes model.keras, a raw-text TF SavedModel (thresholds baked in) and export.json,
and prints the export time, SavedModel size and latencies. See `kemo export --help`;
this is the same command.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kemo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["export", *sys.argv[1:]]))
