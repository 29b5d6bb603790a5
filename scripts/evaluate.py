"""Score predictions like the official scorer: `python scripts/evaluate.py runs/tiny/predictions/submission.zip --split dev --data-dir ../shared/data/brighter/track_a`.

See `kemo evaluate --help`; this is the same command.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kemo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
