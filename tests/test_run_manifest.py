"""`run.json`, the run's manifest (issue 21): written by training (at start, completed
at the end) and by ensembles; runs from before it (no run.json) still reload, resume,
and finish (`tests/test_runs_command.py` lists them).
"""

import json
import re
import shutil

import pytest

from conftest import run_cli
from kemo.run import layout as L

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_training_writes_a_manifest(tiny_run):
    from importlib.metadata import version

    from kemo.machine import cpu_info

    m = json.loads((tiny_run / L.MANIFEST).read_text())
    assert m["format"] == "kemo run manifest" and m["version"] == 1 and m["kind"] == "train"
    assert ISO.match(m["started"]) and ISO.match(m["finished"])
    assert m["started"] <= m["finished"]
    assert m["versions"]["kemo"] == version("kemo")
    assert m["versions"]["keras"] == version("keras") and m["versions"]["jax"] == version("jax")
    assert m["cpu"] == cpu_info()
    assert m["git_commit"] is None or re.match(r"^[0-9a-f]{40}(\+dirty)?$", m["git_commit"])
    assert len(m["sessions"]) == 1 and m["sessions"][0]["finished"] == m["finished"]
    on_disk = {p.name for p in tiny_run.iterdir() if not p.name.startswith(".")}
    assert set(m["files"]) == on_disk | {L.MANIFEST}  # the checkpoints kept, no lock
    for name in (L.CONFIG, L.REPORT, L.MODEL, L.PREPROCESSOR, L.THRESHOLDS, L.CHECKPOINTS):
        assert m["files"][name] == L.FILES[name]


def _interrupted_old_run(tiny_run, tmp_path):
    """The tiny run as written before run.json existed, killed after its last checkpoint."""
    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    (run / L.MANIFEST).unlink()
    for name in (L.REPORT, L.THRESHOLDS, L.MODEL, L.PREDICTIONS_DEV):
        (run / name).unlink()
    shutil.rmtree(run / L.PREPROCESSOR)
    return run


def test_old_run_without_manifest_resumes_to_the_same_report(tiny_run, tmp_path):
    run = _interrupted_old_run(tiny_run, tmp_path)
    code, out, err = run_cli(["train", "--resume", run, "--quiet"])
    assert code == 0, err
    want = json.loads((tiny_run / L.REPORT).read_text())
    got = json.loads((run / L.REPORT).read_text())
    assert got["dev"] == want["dev"] and got["validation"] == want["validation"]
    m = json.loads((run / L.MANIFEST).read_text())
    assert m["started"] is None  # unknown: the run predates run.json
    assert len(m["sessions"]) == 1 and ISO.match(m["finished"])
    assert m["sessions"][0]["command"].startswith("kemo train --resume ")


def test_finished_run_without_manifest_still_loads_and_predicts(tiny_run, tmp_path):
    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    (run / L.MANIFEST).unlink()
    code, out, err = run_cli(["predict", run, "--text", "I am so happy today"])
    assert code == 0, err
    assert out.count("\n") >= 1 and "error" not in err


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '{"format": "other"}'])
def test_damaged_or_foreign_manifest_reads_as_none(tmp_path, text):
    from kemo.run.manifest import read_manifest

    (tmp_path / L.MANIFEST).write_text(text)
    assert read_manifest(tmp_path) is None
    (tmp_path / L.MANIFEST).unlink()
    assert read_manifest(tmp_path) is None
