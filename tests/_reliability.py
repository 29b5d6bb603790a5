"""Helpers shared by tests/test_reliability_*.py: copies of the tiny run and the
"refused in one error line" assertion."""

import shutil
from pathlib import Path

from conftest import run_cli


def refused(rc, err, *needles) -> str:
    """Exit 2, no traceback, exactly one `error:` line holding every needle."""
    assert rc == 2, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    for needle in needles:
        assert str(needle) in errors[0], (needle, errors[0])
    return errors[0]


def copy_run(tiny_run, dst: Path, tokens: bool = False) -> Path:
    """The tiny run copied to `dst`, without its checkpoints (and tokens unless asked)."""
    skip = ["checkpoints", "tensorboard"] + ([] if tokens else ["tokens"])
    shutil.copytree(tiny_run, dst, ignore=lambda d, names: [n for n in names
                                                           if Path(d) == Path(tiny_run)
                                                           and n in skip])
    return dst


def kemo(*argv):
    return run_cli([str(a) for a in argv])


def hand_built_ensemble(tiny_run, ens: Path, members) -> Path:
    """An ensemble directory written by hand: the tiny run's config, thresholds and
    report (an ensemble without report.json was cut short: never served) and an
    ensemble.json listing `members` (paths as given) at weight 1."""
    import json

    ens.mkdir(parents=True)
    for name in ("config.toml", "thresholds.json", "report.json"):
        shutil.copy(Path(tiny_run) / name, ens / name)
    labels = json.loads((Path(tiny_run) / "thresholds.json").read_text())["label_names"]
    (ens / "ensemble.json").write_text(json.dumps({
        "format": "kemo-ensemble", "label_names": labels,
        "members": [{"path": str(m), "weight": 1.0} for m in members]}))
    return ens
