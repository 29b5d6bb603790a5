"""Train, tune thresholds and report: `python scripts/train.py --backend jax --config configs/tiny.toml`.

See `kemo train --help`; this is the same command.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kemo.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
