"""LIME explanations: `python scripts/explain.py RUN --text "I am so happy today"`.

The same command as `kemo explain`; see `kemo explain --help`.
"""

from kemo.cli import script_main

if __name__ == "__main__":
    script_main("explain")
