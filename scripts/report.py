"""HTML report of a run: `python scripts/report.py runs/tiny --data-dir ../shared/data/brighter/track_a` -> runs/tiny/report/index.html.

See `kemo report --help`; this is the same command.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kemo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
