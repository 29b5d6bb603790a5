"""Tokenise a config's splits once: `python scripts/tokenize_data.py --config configs/tiny.toml --out tokens/tiny`.

The token cache feeds `kemo train --tokens` and `kemo predict --tokens`, which then need
no TensorFlow. The same command as `kemo tokenize`; see `kemo tokenize --help`. (Not
named tokenize.py: a script's folder comes first on sys.path, and that name would hide
Python's own `tokenize` module from every script here.)
"""

from kemo.cli import script_main

if __name__ == "__main__":
    script_main("tokenize")
