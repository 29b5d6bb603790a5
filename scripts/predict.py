"""Predict with a trained run: `python scripts/predict.py RUN --split test --languages eng`.

The same command as `kemo predict`; see `kemo predict --help`.
"""

from kemo.cli import script_main

if __name__ == "__main__":
    script_main("predict")
