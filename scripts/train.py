"""Train, tune thresholds and report: `python scripts/train.py --backend jax`.

With no --config it trains configs/default.toml (MiniLM on English, minutes on a CPU).
The same command as `kemo train`; see `kemo train --help`.
"""

from kemo.cli import script_main

if __name__ == "__main__":
    script_main("train")
