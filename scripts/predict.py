"""Predict with a trained run: `python scripts/predict.py RUN --split test --languages eng`.

The same command as `kemo predict`; see `kemo predict --help`.
"""

from kemo.cli import run_as_script

if __name__ == "__main__":
    run_as_script("predict")
