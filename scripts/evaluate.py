"""Score predictions like the official scorer: `python scripts/evaluate.py RUN/predictions --split dev`.

The same command as `kemo evaluate`; see `kemo evaluate --help`.
"""

from kemo.cli import script_main

if __name__ == "__main__":
    script_main("evaluate")
