"""Predict with a trained run: `python scripts/predict.py runs/tiny --split test --languages eng --data-dir ../shared/data/brighter/track_a`.

See `kemo predict --help`; this is the same command.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kemo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["predict", *sys.argv[1:]]))
