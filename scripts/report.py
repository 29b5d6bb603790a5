"""HTML report of a run: `python scripts/report.py RUN` -> RUN/report/index.html.

The same command as `kemo report`; see `kemo report --help`.
"""

from kemo.cli import script_main

if __name__ == "__main__":
    script_main("report")
