"""The user's path: what `kemo train` runs with no `--config`, and how a run ends.

`default_config()` is `configs/default.toml` (MiniLM on English, the optimised recipe,
minutes on a CPU), or the file named by `$KEMO_DEFAULT_CONFIG` (tests point it at a
tiny config). `result_summary(report)` is the line every training ends with before
its run directory: the dev macro-F1 at the run's own thresholds and at 0.5.

Example:
    cfg = load_config(default_config())
    print(result_summary(train(cfg, data_dir, run_dir)["report"]))
    # dev macro-F1: 0.6800 (thresholds tuned on validation; 0.7098 at 0.5)
"""

from __future__ import annotations

import os
from pathlib import Path

from kemo.errors import InputError

DEFAULT_CONFIG_ENV = "KEMO_DEFAULT_CONFIG"
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "default.toml"
_HOW = {"threshold_0.5": "at 0.5", "tuned_thresholds": "thresholds tuned on validation",
        "per_language_thresholds": "per-language thresholds tuned on validation"}


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


def result_summary(report: dict) -> str:
    """`dev macro-F1: F (how the run decides; F at 0.5)` from a run's report.json
    (validation when the run has no dev rows). With several languages F is the mean
    over languages of macro-F1, the shared task's number, and the pooled figure follows.
    """
    split = "dev" if "dev" in report else "validation"
    decides = report.get("meta", {}).get("decides_with", "tuned_thresholds")
    if decides not in report[split]:
        decides = "threshold_0.5"
    mean = report[split][decides].get("mean_over_languages") or {}
    several = mean.get("languages", 1) > 1

    def f1(key):
        if several:
            return report[split][key]["mean_over_languages"]["macro_f1"]
        return report[split][key]["overall"]["macro"]["f1"]

    what = f"mean over {mean['languages']} languages of " if several else ""
    text = f"{split} {what}macro-F1: {f1(decides):.4f} ({_HOW.get(decides, decides)}"
    if decides != "threshold_0.5":
        text += f"; {f1('threshold_0.5'):.4f} at 0.5"
    if several:
        text += f"; all rows pooled {report[split][decides]['overall']['macro']['f1']:.4f}"
    return text + (")" if split == "dev" else "; no dev rows)")
