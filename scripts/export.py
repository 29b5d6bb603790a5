"""Export a run for serving: `python scripts/export.py RUN [--out DIR]`.

The same command as `kemo export`; see `kemo export --help`.
"""

from kemo.cli import script_main

if __name__ == "__main__":
    script_main("export")
