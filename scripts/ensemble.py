"""Average finished runs into one: `python scripts/ensemble.py RUN_A RUN_B --run-dir DIR`.

See `kemo ensemble --help`; this is the same command.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kemo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["ensemble", *sys.argv[1:]]))
