"""Light commands answer at once (issue 22): `kemo --help`, `kemo <command> --help`,
`--version`, `weights list|where`, `evaluate` and `runs` import none of keras, jax, TensorFlow,
torch or sklearn (seconds each). Their times on this machine are a benchmark figure
(`benchmarks/startup.py`, in the README), not a test: this checks the cause, in a fresh
process per command, through `sys.modules`.

The scorer counts F1 in numpy instead of sklearn: checked here against sklearn itself.
"""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT

HEAVY = ("keras", "keras_hub", "jax", "jaxlib", "tensorflow", "tensorflow_text", "torch",
         "sklearn")
COMMANDS = ("train", "tokenize", "predict", "evaluate", "report", "explain", "export",
            "ensemble", "crosslingual", "runs", "weights")

PROBE = """
import json, sys
from kemo.cli import main
try:
    code = main(json.loads(sys.argv[1]))
except SystemExit as e:
    code = e.code
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(json.loads(sys.argv[2])))
print("PROBE " + json.dumps({"code": code, "heavy": heavy}))
"""


def _probe(argv):
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv), json.dumps(HEAVY)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")]
    assert line, (argv, proc.stdout[-500:], proc.stderr[-2000:])
    return json.loads(line[-1][len("PROBE "):]), proc


@pytest.fixture(scope="module")
def gold_predictions(data_dir, tmp_path_factory):
    """pred_eng.csv holding the dev gold labels: a valid folder for `kemo evaluate`."""
    out = tmp_path_factory.mktemp("preds")
    with open(data_dir / "dev" / "eng.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    keep = [k for k, c in enumerate(rows[0]) if c != "text"]
    with open(out / "pred_eng.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow([rows[0][k].capitalize() if k else "id" for k in keep])
        w.writerows([r[k] for k in keep] for r in rows[1:])
    return out


@pytest.mark.parametrize("argv", [["--help"], ["--version"]]
                         + [[c, "--help"] for c in COMMANDS]
                         + [["weights", "list"], ["weights", "where", "minilm-l6-en"]],
                         ids=" ".join)
def test_light_command_imports_no_framework(argv):
    got, proc = _probe(argv)
    assert got["code"] in ((0, 1) if argv[:2] == ["weights", "where"] else (0,)), proc.stderr
    assert got["heavy"] == [], f"kemo {' '.join(argv)} imported {got['heavy']}"


def test_evaluate_imports_no_framework_and_scores(gold_predictions):
    got, proc = _probe(["evaluate", str(gold_predictions), "--split", "dev"])
    assert got["code"] == 0, proc.stderr
    assert "eng" in proc.stdout and "1.0000" in proc.stdout  # gold scored against itself
    assert got["heavy"] == [], got["heavy"]


def test_runs_imports_no_framework_and_lists(tiny_run):
    """`kemo runs` reads JSON and TOML only: a finished run is listed without keras."""
    got, proc = _probe(["runs", str(tiny_run.parent)])
    assert got["code"] == 0, proc.stderr
    assert "tiny" in proc.stdout and "finished" in proc.stdout, proc.stdout
    assert got["heavy"] == [], got["heavy"]


def test_path_refusals_answer_before_any_framework(tiny_run, tmp_path):
    """Issue 31: refusals that depend only on paths and files come before Keras, JAX
    and TensorFlow load (a second, not 14-31 s): an existing --run-dir, --resume of a
    finished run or of a folder kemo did not write, predict --split dev over training's
    dev files, a missing data directory, --local-processes above the machine."""
    import time

    user = tmp_path / "user"
    user.mkdir()
    (user / "notes.txt").write_text("mine")
    cases = [
        ["train", "--config", "tiny", "--run-dir", str(tiny_run)],
        ["train", "--config", "tiny", "--run-dir", str(user), "--overwrite"],
        ["train", "--resume", str(tiny_run)],
        ["train", "--resume", str(user)],
        ["predict", str(tiny_run), "--split", "dev"],
        ["train", "--config", "tiny", "--data-dir", str(tmp_path / "none"),
         "--run-dir", str(tmp_path / "new")],
        ["tokenize", "--config", "tiny", "--data-dir", str(tmp_path / "none"),
         "--out", str(tmp_path / "cache")],
        ["predict", str(tiny_run), "--split", "test", "--data-dir", str(tmp_path / "none")],
        ["train", "--config", "tiny", "--local-processes", "100000"],
        ["ensemble", str(tiny_run), str(tiny_run), "--run-dir", str(user)],
        ["explain", str(tiny_run), "--text", "hi", "--out", str(user)],
        ["evaluate", str(tiny_run / "predictions" / "dev"), "--json", str(user / "notes.txt")],
    ]
    for argv in cases:
        started = time.time()
        got, proc = _probe(argv)
        seconds = time.time() - started
        assert got["code"] == 2 and proc.stderr.startswith("error: "), (argv, proc.stderr)
        assert got["heavy"] == [], f"kemo {' '.join(argv)} imported {got['heavy']}"
        assert seconds < 15, (argv, seconds)  # ~1 s on 2 idle cores; the cause is above
    assert not (tmp_path / "new").exists() and not (tmp_path / "cache").exists()


def test_the_probe_sees_a_framework_import():
    """The check can fail: a command that loads a run imports keras, and the probe says so."""
    got, _ = _probe(["predict", str(ROOT / "no-such-run"), "--text", "hi"])
    assert got["code"] == 2
    probe = subprocess.run([sys.executable, "-c", "import kemo.interrupt as i, sys; "
                            "i.ReraiseInterrupt; print('keras' in sys.modules)"],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert probe.stdout.strip() == "True", probe.stderr[-1000:]


def test_scores_equal_sklearn():
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    from kemo.evaluation.scoring import LabelTable, score_tables
    import pandas as pd

    rng = np.random.default_rng(0)
    for case in range(60):
        n, k = int(rng.integers(1, 40)), int(rng.integers(2, 7))  # Track A: 5 or 6 labels
        y = (rng.random((n, k)) < rng.random(k)).astype(int)
        p = (rng.random((n, k)) < rng.random(k)).astype(int)
        if case % 5 == 0:
            p[:, 0] = 0  # a label never predicted (zero_division)
        if case % 7 == 0:
            y[:, -1] = 0  # a label never present
        labels = [f"l{j}" for j in range(k)]

        def table(name, values):
            cells = pd.DataFrame(values.astype(str), columns=labels)
            cells.insert(0, "id", [f"r{i}" for i in range(n)])
            return LabelTable(name, labels, cells, name)

        got = score_tables(table("pred", p), table("gold", y))
        for avg in ("macro", "micro"):
            want_p, want_r, _, _ = precision_recall_fscore_support(y, p, average=avg,
                                                                   zero_division=0)
            assert got[f"{avg}_f1"] == pytest.approx(
                f1_score(y, p, average=avg, zero_division=0), abs=1e-12)
            assert got[f"{avg}_precision"] == pytest.approx(want_p, abs=1e-12)
            assert got[f"{avg}_recall"] == pytest.approx(want_r, abs=1e-12)
        pp, rr, ff, ss = precision_recall_fscore_support(y, p, average=None, zero_division=0)
        for j, name in enumerate(labels):
            row = got["per_label"][name]
            assert (row["precision"], row["recall"], row["f1"], row["support"]) == \
                pytest.approx((pp[j], rr[j], ff[j], ss[j]), abs=1e-12)


def test_version_and_config_by_name(tmp_path, monkeypatch):
    """`kemo --version`; `--config tiny` is configs/tiny.toml from any directory."""
    from kemo.default_config import resolve_config
    from kemo.errors import InputError

    got, proc = _probe(["--version"])
    assert got["code"] == 0 and proc.stdout.startswith("kemo 0."), proc.stdout
    monkeypatch.chdir(tmp_path)
    assert resolve_config("tiny") == str(ROOT / "configs" / "tiny.toml")
    assert resolve_config("offline/xlmr_eng") == str(ROOT / "configs" / "offline" / "xlmr_eng.toml")
    (tmp_path / "tiny").write_text("name = 'mine'\n")
    assert resolve_config("tiny") == "tiny"  # a file given by name wins
    with pytest.raises(InputError, match=r"--config nope: .*known: default, goemotions, offline/e5_all"):
        resolve_config("nope")


def test_report_header_has_no_none_or_raw_dict(tiny_run, tmp_path):
    """The run report's header: no "resumed after epoch: None", the CPU as a phrase (not a
    Python dict), and "mean over 1 language" (not "languages")."""
    import json
    import shutil

    from kemo.machine import describe_cpu
    from kemo.evaluation.run_page import make_run_page

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    meta = json.loads((run / "report.json").read_text())["meta"]
    assert meta["resumed_after_epoch"] is None and isinstance(meta["cpu"], dict)
    page = make_run_page(run, out_dir=tmp_path / "report").path.read_text()
    assert "resumed after epoch" not in page and "{&#x27;" not in page and "{'" not in page
    assert f"cpu: {describe_cpu(meta['cpu'])}".replace("'", "&#x27;") in page
    assert "cpu: cpu:" not in page  # the header's key once
    assert "mean over 1 language<" in page
    # the epoch whose weights early stopping restored is marked (tiny: patience 3)
    best = meta["best_epoch_restored"]
    assert best in (1, 2) and f"best epoch restored: {best}" in page
