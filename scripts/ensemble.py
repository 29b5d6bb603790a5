"""Average finished runs into one: `python scripts/ensemble.py RUN_A RUN_B --run-dir DIR`.

The same command as `kemo ensemble`; see `kemo ensemble --help`.
"""

from kemo.cli import run_as_script

if __name__ == "__main__":
    run_as_script("ensemble")
