"""Average finished runs into one: `python scripts/ensemble.py RUN_A RUN_B --run-dir DIR`.

The same command as `kemo ensemble`; see `kemo ensemble --help`.
"""

from kemo.cli import script_main

if __name__ == "__main__":
    script_main("ensemble")
