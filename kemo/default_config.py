"""The user's path: what `kemo train` runs with no `--config`, and `--config NAME`.

`default_config()` is `configs/default.toml` (MiniLM on English, the optimised recipe,
minutes on a CPU), or the file named by `$KEMO_DEFAULT_CONFIG` (tests point it at a
tiny config); `resolve_config("tiny")` finds `configs/tiny.toml` from any directory.
(The line a training ends with is `kemo.evaluation.result_text.result_line`.)

Example:
    cfg = load_config(default_config())
    cfg = load_config(resolve_config("offline/xlmr_eng"))
"""

from __future__ import annotations

import os
from pathlib import Path

from kemo.errors import InputError

DEFAULT_CONFIG_ENV = "KEMO_DEFAULT_CONFIG"
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.toml"


def default_config() -> str:
    """`$KEMO_DEFAULT_CONFIG`, else configs/default.toml; relative to the cwd when
    inside it (as printed)."""
    path = Path(os.environ.get(DEFAULT_CONFIG_ENV) or DEFAULT_CONFIG)
    if not path.is_file():
        raise InputError(f"no --config given and the default config {path} does not exist "
                         f"(${DEFAULT_CONFIG_ENV}, else configs/default.toml): pass --config FILE")
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


CONFIGS_DIR = DEFAULT_CONFIG.parent


def resolve_config(name: str | None) -> str:
    """What `--config NAME` names: an existing file as given; else a bare name (`tiny`,
    `offline/xlmr_eng`) is `configs/<name>.toml` of this checkout, found from any
    directory like the default config; None: `default_config()`.

    Example:
        resolve_config("tiny")   # 'configs/tiny.toml' (from the checkout)
    """
    if not name:
        return default_config()
    path = Path(name)
    if path.is_file() or path.suffix == ".toml" or (path.exists() and not (
            CONFIGS_DIR / f"{name}.toml").is_file()):
        return name  # load_config names a missing, bad file or a directory itself
    # a folder that happens to be called `tiny` beside you: the config name wins
    found = CONFIGS_DIR / f"{name}.toml"
    if found.is_file():
        try:
            return str(found.relative_to(Path.cwd()))
        except ValueError:
            return str(found)
    known = sorted(p.relative_to(CONFIGS_DIR).with_suffix("").as_posix()
                   for p in CONFIGS_DIR.rglob("*.toml"))
    raise InputError(f"--config {name}: no such file, and no config named {name!r} in "
                     f"{CONFIGS_DIR} (known: {', '.join(known)})")
