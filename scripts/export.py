"""Export a run for serving: `python scripts/export.py RUN [--out DIR]`.

The same command as `kemo export`; see `kemo export --help`.
"""

from kemo.cli import run_as_script

if __name__ == "__main__":
    run_as_script("export")
