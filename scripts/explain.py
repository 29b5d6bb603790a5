"""LIME explanations: `python scripts/explain.py runs/tiny --text "I am so happy today"` (or --csv FILE with id,text).

See `kemo explain --help`; this is the same command.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kemo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["explain", *sys.argv[1:]]))
