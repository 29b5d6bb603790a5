"""Reliability, round 4 (issue 30): one table or fuzz test per class.

1. One rule for every output path (`kemo.owned_dir.check_output`): every command that
   takes an output path refuses a file or folder kemo did not write, in one line,
   writing nothing; kemo's own is replaced only with --overwrite where a command takes it.
2. A run is a run (`kemo.run.verdict`): --resume continues only an unfinished training
   run kemo wrote; advice matches the folder; train --overwrite replaces only kemo's.
3. An ensemble is bound to its members (model sha256 and run.json times), and one cut
   short while being written is never served.
4. Bounded and clean: --local-processes above what the machine holds is refused
   (nothing started); a SIGTERM during start-up leaves no child; a malformed or
   unreachable coordinator address ends in one line, in seconds.
5. Readers survive one bad entry: `kemo runs` lists a malformed run as a row with its
   problem; a malformed weights marker is damaged, and `fetch` repairs it.
6. Command-line text: non-UTF-8 --text refused in one line; a subset prediction's zip
   holds every language the run predicted into that folder, and says so.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile

import pytest

from _reliability import copy_run, kemo, refused
from conftest import ROOT, snapshot
from kemo.run import layout as L

TINY = ROOT / "configs" / "tiny.toml"


def _gold_preds(tiny_run, tmp_path):
    """A folder holding the tiny run's dev pred_eng.csv (scored by evaluate)."""
    preds = shutil.copytree(tiny_run / L.PREDICTIONS / "dev", tmp_path / "preds")
    return preds


# -- 1. one rule for every output path ---------------------------------------------------

def _commands(run, data_dir, tmp_path):
    """Every command that takes an output path: (name, argv with OUT for the path)."""
    preds = _gold_preds(run, tmp_path)
    sets = ["--set", "train.epochs=1", "--set", "data.max_train_examples=100"]
    return {
        "evaluate --json": ["evaluate", preds, "--split", "dev", "--json", "OUT"],
        "explain --out": ["explain", run, "--text", "I am so happy", "--num-samples", "10",
                          "--out", "OUT"],
        "predict --out": ["predict", run, data_dir / "dev" / "eng.csv", "--out", "OUT"],
        "train --run-dir": ["train", "--config", TINY, *sets, "--run-dir", "OUT"],
        "ensemble --run-dir": ["ensemble", run, run, "--run-dir", "OUT"],
        "export --out": ["export", run, "--no-benchmark", "--out", "OUT"],
        "report --out": ["report", run, "--out", "OUT"],
        "tokenize --out": ["tokenize", "--config", TINY, *sets, "--out", "OUT"],
    }


@pytest.mark.parametrize("shape", ["a user's file", "a folder with a user's file",
                                   "a user's file named as kemo's"])
def test_every_output_path_refuses_what_kemo_did_not_write(tiny_run, data_dir, tmp_path,
                                                           shape):
    """Each command, pointed at a path kemo did not write, exits 2 with one line and
    leaves every byte as it was; with --overwrite where it takes it, too."""
    run = copy_run(tiny_run, tmp_path / "run")
    commands = _commands(run, data_dir, tmp_path)
    for name, argv in commands.items():
        user = tmp_path / "user" / name.split()[0]
        if shape == "a user's file":
            user.parent.mkdir(parents=True, exist_ok=True)
            user.write_text("my own notes")
        else:
            user.mkdir(parents=True)
            own = {"a user's file named as kemo's": {
                "evaluate": "pred_eng.csv", "explain": "explanations.json",
                "predict": "pred_eng.csv", "train": "model.keras", "ensemble": "report.json",
                "export": "export.json", "report": "index.html", "tokenize": "manifest.json"}
                [name.split()[0]]}.get(shape, "notes.txt")
            (user / own).write_text("my own file")
        before, run_before = snapshot(tmp_path / "user"), snapshot(run)
        args = [user if a == "OUT" else a for a in argv]
        if name == "predict --out" and shape == "a folder with a user's file":
            rc, _, err = kemo(*args)  # predict writes files into a folder: beside, not over
            assert rc == 0 and (user / "notes.txt").read_text() == "my own file", err
            continue
        for extra in ([], ["--overwrite"]) if name.split()[0] in (
                "evaluate", "predict", "train", "ensemble") else ([],):
            rc, out, err = kemo(*args, *extra)
            refused(rc, err, user)
            assert snapshot(tmp_path / "user") == before, name
        assert snapshot(run) == run_before, name
        assert not [p for p in tmp_path.rglob(".*partial-*")], name


def test_evaluate_json_replaces_only_its_own_scores_with_overwrite(tiny_run, tmp_path):
    preds = _gold_preds(tiny_run, tmp_path)
    target = preds / "pred_eng.csv"  # the file being scored: never replaced
    before = target.read_bytes()
    rc, _, err = kemo("evaluate", preds, "--split", "dev", "--json", target, "--overwrite")
    refused(rc, err, target, "kemo did not write it")
    assert target.read_bytes() == before
    scores = tmp_path / "scores.json"
    rc, _, err = kemo("evaluate", preds, "--split", "dev", "--json", scores)
    assert rc == 0, err
    rc, _, err = kemo("evaluate", preds, "--split", "dev", "--json", scores)
    refused(rc, err, scores, "--overwrite")
    rc, _, err = kemo("evaluate", preds, "--split", "dev", "--json", scores, "--overwrite")
    assert rc == 0, err
    assert json.loads(scores.read_text())["format"] == "kemo evaluate scores"


def test_explain_out_replaces_its_own_folder_only(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    out = tmp_path / "why"
    for text in ("I am so happy", "I am so sad"):  # kemo's own folder: replaced
        rc, _, err = kemo("explain", run, "--text", text, "--num-samples", "10", "--out", out)
        assert rc == 0, err
    assert (out / ".kemo-explanations").is_file()
    assert json.loads((out / "explanations.json").read_text())[0]["text"] == "I am so sad"
    (out / "mine.txt").write_text("mine")
    rc, _, err = kemo("explain", run, "--text", "x y", "--num-samples", "10", "--out", out)
    refused(rc, err, "mine.txt", "did not write")


# -- 2. a run is a run -------------------------------------------------------------------

def _run_dir_cases(tiny_run, tmp_path):
    user = tmp_path / "user"
    user.mkdir()
    (user / "model.keras").write_text("mine")
    (user / "predictions_dev.csv").write_text("mine")
    shutil.copy(tiny_run / L.CONFIG, user / L.CONFIG)  # a kemo config.toml, no run.json
    finished = copy_run(tiny_run, tmp_path / "finished")
    unfinished = copy_run(tiny_run, tmp_path / "unfinished")
    (unfinished / L.REPORT).unlink()
    foreign = copy_run(tiny_run, tmp_path / "foreign")
    (foreign / L.REPORT).unlink()
    (foreign / "notes.txt").write_text("mine")
    nested = copy_run(tiny_run, tmp_path / "nested")  # a user's file inside kemo's folder
    (nested / L.PREDICTIONS / "dev" / "mine.csv").write_text("mine")
    return user, finished, unfinished, foreign, nested


def test_run_dir_and_resume_refusals_match_the_folder(tiny_run, tmp_path):
    user, finished, unfinished, foreign, nested = _run_dir_cases(tiny_run, tmp_path)
    new = ["train", "--config", TINY, "--run-dir"]
    cases = [  # (argv, needles, words that must not appear)
        (new + [user], ["kemo did not write it"], ["--resume"]),
        (new + [user, "--overwrite"], ["kemo did not write it"], ["--resume"]),
        (new + [foreign, "--overwrite"], ["notes.txt"], ["--resume"]),
        (new + [nested, "--overwrite"], ["predictions/dev/mine.csv"], ["--resume"]),
        (new + [finished], ["a finished training run", "--overwrite"], ["--resume"]),
        (new + [unfinished], ["unfinished", f"--resume {unfinished}", "--overwrite"], []),
        (["train", "--resume", user], ["not a run kemo's training wrote"], []),
        (["train", "--resume", foreign], ["notes.txt"], []),
        (["train", "--resume", finished], ["already finished", "--overwrite"], []),
        (["train", "--resume", tmp_path / "none"], ["not found"], []),
    ]
    for argv, needles, absent in cases:
        before = snapshot(tmp_path)
        started = time.time()
        rc, _, err = kemo(*argv)
        line = refused(rc, err, *needles)
        assert not any(a in line for a in absent), line
        assert snapshot(tmp_path) == before, argv
        assert time.time() - started < 5, argv  # before any model or data is loaded


def test_train_overwrite_replaces_a_finished_run_after_saying_so(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    old_started = json.loads((run / L.MANIFEST).read_text())["started"]
    rc, out, err = kemo("train", "--config", TINY, "--set", "train.epochs=1", "--set",
                        "data.max_train_examples=100", "--run-dir", run, "--overwrite",
                        "--quiet")
    assert rc == 0, err
    assert f"--overwrite: replacing {run} (a finished training run)" in out + err
    m = json.loads((run / L.MANIFEST).read_text())
    assert m["started"] >= old_started and "--overwrite" in m["command"]
    assert json.loads((run / L.REPORT).read_text())["meta"]["epochs_run"] == 1


# -- 3. an ensemble is bound to its members -------------------------------------------------

def test_ensemble_refuses_a_replaced_member_and_a_cut_short_build(tiny_run, tmp_path):
    a, b = copy_run(tiny_run, tmp_path / "a"), copy_run(tiny_run, tmp_path / "b")
    ens = tmp_path / "ens"
    rc, _, err = kemo("ensemble", a, b, "--run-dir", ens)
    assert rc == 0, err
    members = json.loads((ens / L.ENSEMBLE).read_text())["members"]
    assert all(len(m["identity"]["model_sha256"]) == 64 for m in members)
    rc, _, err = kemo("predict", ens, "--text", "I am so happy")
    assert rc == 0, err

    # b's folder replaced by another finished run with the same labels and model file
    manifest = json.loads((b / L.MANIFEST).read_text())
    manifest["started"] = "2030-01-01T00:00:00Z"
    (b / L.MANIFEST).write_text(json.dumps(manifest))
    rc, out, err = kemo("predict", ens, "--text", "I am so happy")
    refused(rc, err, "members.1", str(b), "not the run this ensemble was built from")
    assert "happy" not in out

    # killed while being written (report.json is written last): never served
    (ens / L.REPORT).unlink()
    rc, _, err = kemo("predict", ens, "--text", "I am so happy")
    refused(rc, err, "not finished", "--overwrite")
    shutil.copy(tiny_run / L.MANIFEST, b / L.MANIFEST)
    rc, _, err = kemo("ensemble", a, b, "--run-dir", ens)
    refused(rc, err, "unfinished ensemble", "--overwrite")
    rc, _, err = kemo("ensemble", a, b, "--run-dir", ens, "--overwrite")
    assert rc == 0, err
    rc, _, err = kemo("predict", ens, "--text", "I am so happy")
    assert rc == 0, err


# -- 4. bounded and clean -------------------------------------------------------------------

def test_local_processes_above_the_machine_are_refused_saying_the_bound():
    from kemo.multiprocess import local_process_limit

    limit, why = local_process_limit()
    for n in (limit + 1, 1000, 10**9):
        started = time.time()
        rc, out, err = kemo("train", "--config", TINY, "--local-processes", n, "--set",
                            "train.distribution=\"data_parallel\"")
        refused(rc, err, f"--local-processes {n}", f"at most {limit}", why.split(",")[0])
        assert time.time() - started < 5


LAUNCHER = textwrap.dedent("""
    import json, subprocess, sys, time
    from kemo import multiprocess
    pids = sys.argv[1]
    real = subprocess.Popen
    def slow_popen(*args, **kwargs):  # a slow start-up: a signal arrives between starts
        p = real(*args, **kwargs)
        with open(pids, "a") as f:
            f.write(f"{p.pid}\\n")
        time.sleep(1.0)
        return p
    subprocess.Popen = slow_popen
    multiprocess._command = lambda argv: [sys.executable, "-c", "import time; time.sleep(120)"]
    sys.exit(multiprocess.launch([], 2, grace=1))
""")


def test_sigterm_during_start_up_leaves_no_child(tmp_path):
    pids = tmp_path / "pids"
    proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(pids)], cwd=ROOT)
    deadline = time.time() + 60
    while not (pids.is_file() and pids.read_text().strip()) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)  # after the first child, before the second
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    children = [int(p) for p in pids.read_text().split()]
    assert len(children) == 1, children  # no child started after the signal
    time.sleep(0.5)
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("setting", [
    "nonsense", "host:port", "localhost:0", "localhost:99999", ":7777", "a.invalid:7777",
    "localhost:7777,localhost", ("NUM_PROCESSES", "0"), ("NUM_PROCESSES", "two"),
    ("PROCESS_ID", "2"), ("PROCESS_ID", "-1"), ("KEMO_HEARTBEAT_TIMEOUT", "0")])
def test_malformed_multi_process_setting_is_refused_at_once(setting, monkeypatch):
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "localhost:7777")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "1")
    name, value = setting if isinstance(setting, tuple) else ("JOB_ADDRESSES", setting)
    name = name if name.startswith("KEMO") else f"KERAS_DISTRIBUTION_{name}"
    monkeypatch.setenv(name, value)
    started = time.time()
    rc, _, err = kemo("train", "--config", TINY, "--set", "train.distribution=\"data_parallel\"")
    refused(rc, err, name)
    assert time.time() - started < 5


def test_unreachable_coordinator_ends_within_the_heartbeat_timeout(monkeypatch):
    from kemo.errors import InputError
    from kemo.multiprocess import _free_port, check_reachable

    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", f"127.0.0.1:{_free_port()}")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "1")
    started = time.time()
    with pytest.raises(InputError, match="not reachable within 2s"):
        check_reachable(2)
    assert time.time() - started < 6
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "192.0.2.1:7777")  # not ours
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "0")
    with pytest.raises(InputError, match="process 0 cannot serve it"):
        check_reachable(2)


# -- 5. readers that survive one bad entry --------------------------------------------------

RUN_DAMAGE = {  # name -> (file, how it is damaged)
    "started_a_number": (L.MANIFEST, lambda d: d | {"started": 5}),
    "kind_a_list": (L.MANIFEST, lambda d: d | {"kind": ["train"]}),
    "numeric_languages": (L.CONFIG, "name = 3\n[data]\nlanguages = [1, 2]\n"),
    "report_a_list_as_table": (L.REPORT, lambda d: d | {"validation": [1, 2]}),
    "report_of_a_newer_kemo": (L.REPORT, lambda d: d | {"format_version": 99}),
    "report_an_array": (L.REPORT, lambda d: [d]),
    "meta_a_string": (L.REPORT, lambda d: d | {"meta": "x"}),
    "model_replaced": (L.MODEL, b"PK not the model"),
    "history_an_object": (L.HISTORY_JSON, lambda d: {"epochs": d}),
}


def test_runs_lists_every_run_and_each_problem(tiny_run, tmp_path):
    copy_run(tiny_run, tmp_path / "good")
    for name, (file, how) in RUN_DAMAGE.items():
        run = copy_run(tiny_run, tmp_path / name)
        path = run / file
        if callable(how):
            path.write_text(json.dumps(how(json.loads(path.read_text()))))
        else:
            path.write_bytes(how if isinstance(how, bytes) else how.encode())
    for argv in (["runs", tmp_path], ["runs", tmp_path, "--json"]):
        rc, out, err = kemo(*argv)
        assert rc == 0 and "Traceback" not in err, err
        for name in ["good", *RUN_DAMAGE]:
            assert name in out, (name, out)
    rows = {r["name"]: r for r in json.loads(kemo("runs", tmp_path, "--json")[1])}
    assert rows["good"]["status"] == "finished"
    for name in ("report_of_a_newer_kemo", "model_replaced", "report_a_list_as_table",
                 "report_an_array"):
        assert rows[name]["status"].startswith("damaged:"), rows[name]
    assert "format 99" in rows["report_of_a_newer_kemo"]["status"]
    assert "model.keras" in rows["model_replaced"]["status"]


@pytest.mark.parametrize("marker", ["[1, 2]", "\"x\"", "3", "null", '{"files": [1]}'])
def test_malformed_weights_marker_is_damaged_and_fetch_repairs_it(marker, monkeypatch,
                                                                  tmp_path):
    from kemo import weights
    from kemo.weights import OfflineModel
    from kemo.weights._store import MARKER

    def build(tmp):
        (tmp / "model.safetensors").write_bytes(b"\0" * 64)
        return {"num_params": 1}

    monkeypatch.setitem(weights.OFFLINE_MODELS, "fake", OfflineModel(
        name="fake", description="a test model", hf_name="test/fake", languages="en",
        tokenizer="BertTokenizer", num_layers=1, hidden_dim=4, vocabulary_size=10,
        license="MIT", sources=("fake==1",), build=build))
    monkeypatch.setattr(weights, "_HASHED", set())
    monkeypatch.setenv("KEMO_WEIGHTS_DIR", str(tmp_path))
    assert kemo("weights", "fetch", "fake")[0] == 0
    (tmp_path / "fake" / MARKER).write_text(marker)
    for argv in (["list"], ["list", "--verify"], ["where", "fake"], ["verify", "fake"]):
        rc, out, err = kemo("weights", *argv)
        assert "Traceback" not in err and rc in (0, 1, 2), (argv, err)
        if argv[0] == "list":
            line = next(x for x in out.splitlines() if x.startswith("fake"))
            assert " yes " not in line, line
    rc, out, err = kemo("weights", "fetch", "fake")
    assert rc == 0, err
    assert weights.is_materialised("fake") and weights.verify("fake") is None


def test_weights_list_verify_sees_an_altered_file_of_the_same_size(monkeypatch, tmp_path):
    from kemo import weights
    from kemo.weights import OfflineModel

    monkeypatch.setitem(weights.OFFLINE_MODELS, "fake", OfflineModel(
        name="fake", description="a test model", hf_name="test/fake", languages="en",
        tokenizer="BertTokenizer", num_layers=1, hidden_dim=4, vocabulary_size=10,
        license="MIT", sources=("fake==1",),
        build=lambda tmp: (tmp / "w.bin").write_bytes(b"\0" * 64) and {}))
    monkeypatch.setattr(weights, "_HASHED", set())
    monkeypatch.setenv("KEMO_WEIGHTS_DIR", str(tmp_path))
    assert kemo("weights", "fetch", "fake")[0] == 0
    (tmp_path / "fake" / "w.bin").write_bytes(b"\1" * 64)
    line = lambda out: next(x for x in out.splitlines() if x.startswith("fake"))  # noqa
    assert " yes " in line(kemo("weights", "list")[1])  # sizes only: not seen
    assert "DAMAGED" in line(kemo("weights", "list", "--verify")[1])


# -- 6. command-line text -------------------------------------------------------------------

def test_non_utf8_text_is_refused_in_one_line(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    before = snapshot(run)
    bad = b"I am \xff\xfe happy"
    for argv in ([b"predict", str(run).encode(), b"--text", bad],
                 [b"explain", str(run).encode(), b"--text", bad, b"--num-samples", b"10"]):
        proc = subprocess.run([sys.executable.encode(), b"-m", b"kemo.cli", *argv], cwd=ROOT,
                              capture_output=True, timeout=120)
        err = proc.stderr.decode("utf-8", "replace")
        refused(proc.returncode, err, "--text number 1", "not valid UTF-8 (byte 5)")
    assert snapshot(run) == before  # no empty explanations/ folder either


def test_subset_prediction_zip_keeps_the_runs_other_languages(tiny_run, data_dir, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    rc, _, err = kemo("predict", run, "--split", "dev", "--languages", "eng", "--out",
                      tmp_path / "out")
    assert rc == 0, err
    rc, out, err = kemo("predict", run, "--split", "dev", "--languages", "deu", "--out",
                        tmp_path / "out", "--untrained-labels", "zero")
    assert rc == 0, err
    with zipfile.ZipFile(tmp_path / "out" / "submission.zip") as z:
        assert sorted(z.namelist()) == ["track_a/pred_deu.csv", "track_a/pred_eng.csv"]
    assert "submission.zip holds deu, eng" in err and "eng by an earlier predict" in err
    # a pred file another run wrote there is not put in this run's zip
    other = copy_run(tiny_run, tmp_path / "other")
    rc, _, err = kemo("predict", other, "--split", "dev", "--languages", "eng", "--out",
                      tmp_path / "out", "--overwrite")
    assert rc == 0, err
    with zipfile.ZipFile(tmp_path / "out" / "submission.zip") as z:
        assert z.namelist() == ["track_a/pred_eng.csv"]


# -- misleading: a remote preset on a machine without network ---------------------------------

def test_uncached_hub_preset_without_network_is_refused_in_seconds(monkeypatch, tmp_path):
    from kemo import presets
    from kemo.errors import InputError

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setitem(presets.HUB_HOSTS, "hf://", "192.0.2.1")  # TEST-NET: never answers
    started = time.time()
    with pytest.raises(InputError, match="'model.preset': 'hf://org/model' must be downloaded"):
        presets.resolve_preset("hf://org/model")
    assert time.time() - started < presets.PROBE_SECONDS + 2
    (tmp_path / "hf" / "models--org--model").mkdir(parents=True)  # cached: no network needed
    assert presets.resolve_preset("hf://org/model") == "hf://org/model"


def test_config_name_wins_over_a_folder_of_that_name(tmp_path, monkeypatch):
    from kemo.default_config import resolve_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny").mkdir()
    assert resolve_config("tiny").endswith("configs/tiny.toml")
    (tmp_path / "mine.toml").write_text("")
    assert resolve_config("mine.toml") == "mine.toml"


def test_weights_fetch_never_replaces_a_folder_kemo_did_not_write(monkeypatch, tmp_path):
    from kemo import weights
    from kemo.weights import OfflineModel

    monkeypatch.setitem(weights.OFFLINE_MODELS, "fake", OfflineModel(
        name="fake", description="a test model", hf_name="test/fake", languages="en",
        tokenizer="BertTokenizer", num_layers=1, hidden_dim=4, vocabulary_size=10,
        license="MIT", sources=("fake==1",),
        build=lambda tmp: (tmp / "w.bin").write_bytes(b"\0" * 64) and {}))
    monkeypatch.setattr(weights, "_HASHED", set())
    monkeypatch.setenv("KEMO_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "fake").mkdir()
    (tmp_path / "fake" / "mine.txt").write_text("mine")
    before = snapshot(tmp_path)
    rc, out, err = kemo("weights", "fetch", "fake")
    refused(rc, err, tmp_path / "fake", "kemo did not write it")
    assert snapshot(tmp_path) == before
    shutil.rmtree(tmp_path / "fake")
    assert kemo("weights", "fetch", "fake")[0] == 0
    (tmp_path / "fake" / "w.bin").write_bytes(b"\1" * 64)  # damaged: kemo's, rebuilt
    rc, out, err = kemo("weights", "fetch", "fake")
    assert rc == 0 and "damaged" in out, err
    assert (tmp_path / "fake" / "w.bin").read_bytes() == b"\0" * 64
