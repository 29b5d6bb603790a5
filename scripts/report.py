"""HTML report of a run: `python scripts/report.py RUN` -> RUN/report/index.html.

The same command as `kemo report`; see `kemo report --help`.
"""

from kemo.cli import run_as_script

if __name__ == "__main__":
    run_as_script("report")
