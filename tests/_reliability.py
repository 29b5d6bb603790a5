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
