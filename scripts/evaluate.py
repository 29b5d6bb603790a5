"""Score predictions like the official scorer: `python scripts/evaluate.py RUN/predictions --split dev`.

The same command as `kemo evaluate`; see `kemo evaluate --help`.
"""

from kemo.cli import run_as_script

if __name__ == "__main__":
    run_as_script("evaluate")
