"""An ensemble's run directory (issue 21): `kemo ensemble` writes its `run.json` and holds
the run lock (`kemo.run.lock.RunLock`) on the directory while it writes, so a second
writer (another ensemble, a training) is refused with the holder's pid.
"""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, TINY_OVERRIDES, run_cli
from kemo.run import layout as L

HOLD = ("import sys; from kemo.run.lock import RunLock; "
        "RunLock(sys.argv[1]).acquire(); print('held', flush=True); sys.stdin.read()")


@pytest.fixture(scope="module")
def second_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "tiny-seed7"
    sets = [a for o in [*TINY_OVERRIDES, "train.seed=7"] for a in ("--set", o)]
    code, _, err = run_cli(["train", "--config", ROOT / "configs" / "tiny.toml", "--run-dir",
                            run_dir, "--quiet", *sets])
    assert code == 0, err
    return run_dir


def test_ensemble_writes_a_manifest_and_holds_the_lock(tiny_run, second_run, tmp_path,
                                                      monkeypatch):
    import kemo.prediction.split_files as sp
    from kemo.errors import InputError
    from kemo.run.lock import check_unlocked

    out = tmp_path / "ens"
    seen = []
    real = sp.write_split_predictions

    def probing(path, *args, **kwargs):  # while the ensemble writes: is out locked?
        try:
            check_unlocked(out)
            seen.append("free")
        except InputError as e:
            seen.append(str(e))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(sp, "write_split_predictions", probing)
    code, _, err = run_cli(["ensemble", tiny_run, second_run, "--run-dir", out])
    assert code == 0, err
    assert seen and all(f"in use by another kemo process (pid {os.getpid()})" in s
                        for s in seen), seen
    assert not (out / L.LOCK).exists()  # released
    m = json.loads((out / L.MANIFEST).read_text())
    assert m["kind"] == "ensemble" and m["finished"] and m["started"] <= m["finished"]
    assert m["command"].startswith("kemo ensemble ")
    assert m["files"][L.ENSEMBLE] == L.FILES[L.ENSEMBLE] and L.REPORT in m["files"]
    assert m["versions"]["keras"] and m["cpu"]["cores"] >= 1

    code, out_text, err = run_cli(["runs", tmp_path, "--json"])
    [row] = json.loads(out_text)
    assert row["kind"] == "ensemble" and row["status"] == "finished" and row["epochs"] is None


def test_a_second_writer_is_refused(tiny_run, second_run, tmp_path):
    out = tmp_path / "ens"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=ROOT, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run_cli(["ensemble", tiny_run, second_run, "--run-dir", out])
        written = sorted(p.name for p in out.iterdir())
    finally:
        holder.communicate("", timeout=60)
    assert code == 2 and err.strip().splitlines() == [
        f"error: run directory {out}: in use by another kemo process (pid {holder.pid}); "
        f"wait for it to finish or stop it, then --resume {out}"], err
    assert written == [L.LOCK]  # the holder's: the refused ensemble wrote nothing
