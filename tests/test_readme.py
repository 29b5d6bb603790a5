"""The README's own command blocks run as written (issue 22), in order, in a temporary
directory, and every block exits 0.

Each fenced ```bash block of README.md is classified in `BLOCKS` by its first command
line: run as is, run with substitutions (a block that trains for long trains the tiny
config on 600 rows for 1 epoch instead; the data root becomes this machine's), or
skipped with the reason (installing, the whole test suite, hours of benchmarks, a GPU
machine). A block the table does not know fails the test, so a new or changed block is
looked at; a block that breaks fails with its output. The two ```python blocks run
too: the one that serves the tour's export, with TensorFlow and no kemo, Keras-hub or
JAX module (`test_export_snippet_runs_tensorflow_only` runs it alone, in the default
suite), and the Python API example on the tour's run (`test_api_example_runs`, also
in the default suite).

Why `slow`: the README trains six runs (tour, first run, train, e5_all, token cache,
a second ensemble member) and predicts, reports, explains and exports; each `kemo`
process also pays ~8 s of imports. On 2 CPU cores (shared with a training) it took
5.3 min (317 s) in one process; the default suite already takes 12.5 min on those cores
in two workers and should stay within ~15 min, and 5.3 more minutes of work would take it
to 15-18 min, so it runs with `-m slow`:

    python -m pytest -n 0 -m slow tests/test_readme.py
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

README = ROOT / "README.md"
QUICK = ("--set train.epochs=1 --set data.max_train_examples=600 "
         "--set model.sequence_length=64 --set data.length_buckets=[32]")
TINY_QUICK = f"--config configs/tiny.toml {QUICK}"

# first command line of a block -> "run" | ("sub", [(old, new), ...]) | ("skip", reason)
BLOCKS = {
    "export KEMO_DATA_DIR=../shared/data/brighter/track_a        # Track A root": (
        "sub", [("--config tiny --run-dir runs/tour", f"--run-dir runs/tour {TINY_QUICK}")]),
    "python3 -m venv .venv": ("skip", "installs the package: the suite runs in that venv"),
    "pip install torch --index-url": ("skip", "installs the optional PyTorch extras"),
    "export KEMO_DATA_DIR=../shared/data/brighter/track_a   # Track A root": (
        "sub", [("python scripts/train.py --backend jax",
                 f"python scripts/train.py --backend jax {TINY_QUICK}")]),
    "python -m pytest": ("skip", "the whole test suite, this test included"),
    "python benchmarks/step_profile.py --throughput": (
        "skip", "a ~35 min benchmark on 2 cores; tests/test_step_profile.py runs its tiny "
        "form and checks that every setting it names exists"),
    "kemo train --config configs/offline/xlmr_eng.toml": (
        "sub", [("--config configs/offline/xlmr_eng.toml --set train.epochs=3", TINY_QUICK)]),
    "kemo train --config configs/offline/e5_all.toml": (
        "sub", [("--config configs/offline/e5_all.toml", TINY_QUICK)]),
    "kemo train --config configs/offline/e5_all_full.toml": (
        "sub", [("--config configs/offline/e5_all_full.toml --run-dir ~/kemo-runs/e5_all_full",
                 f"{TINY_QUICK} --run-dir runs/e5_all_full --keep-checkpoints"),
                ("kemo train --resume ~/kemo-runs/e5_all_full",
                 "rm runs/e5_all_full/report.json && kemo train --resume runs/e5_all_full")]),
    "kemo tokenize --config configs/offline/xlmr_eng_hin.toml": (
        "sub", [("kemo tokenize --config configs/offline/xlmr_eng_hin.toml",
                 f"kemo tokenize {TINY_QUICK}"),
                ("kemo train --config configs/offline/xlmr_eng_hin.toml",
                 f"kemo train {TINY_QUICK}")]),
    "mkdir -p my_data && cat > my_data/train.csv": (
        "sub", [('preset = "minilm-l6-en"', 'preset = ""\nsequence_length = 32'),
                ("epochs = 3", "epochs = 1")]),
    "RUN=runs/tour": ("sub", [("--config tiny --set train.seed=1",
                               f"{TINY_QUICK} --set train.seed=1")]),
    "kemo train --local-processes 2 --config tiny": (
        "sub", [("--config tiny --set", f"{TINY_QUICK} --set")]),
    "kemo finetune ~/kemo-runs/e5_all_full": (
        "skip", "starts from the full-data run (hours); tests/test_finetune.py and "
        "tests/test_init_from.py run the same commands on a tiny source"),
    "gcloud compute tpus tpu-vm ssh NAME": ("skip", "a TPU pod slice (several TPU hosts)"),
    "srun --nodes=2": ("skip", "a SLURM GPU cluster"),
}


def readme_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, in order."""
    return [(m.group(1), m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M)]


def first_line(body: str) -> str:
    return next(ln for ln in body.splitlines() if ln.strip() and not ln.startswith("#"))


def plan(text: str) -> list[tuple[str, str, str]]:
    """(kind, first line, script) of each block to run; fails on an unknown block."""
    out = []
    for lang, body in readme_blocks(text):
        if lang == "python":
            out.append(("python", first_line(body), body))
            continue
        if lang != "bash":
            continue
        head = first_line(body)
        key = next((k for k in BLOCKS if head.startswith(k)), None)
        assert key is not None, (f"README block not classified in tests/test_readme.py "
                                 f"BLOCKS (run, substitute or skip it): {head!r}")
        action = BLOCKS[key]
        if action[0] == "skip":
            continue
        script = body
        for old, new in (action[1] if action != "run" else []):
            assert old in script, f"substitution {old!r} no longer matches block {head!r}"
            script = script.replace(old, new)
        out.append(("bash", head, script))
    return out


def test_every_block_is_classified():
    """Cheap, in the default suite: each bash block is known and its substitutions
    still match, so a README edit that needs a new rule fails here first."""
    steps = plan(README.read_text())
    assert [k for k, _, _ in steps].count("python") == 2
    assert steps[0][1].startswith("export KEMO_DATA_DIR")  # the tour comes first
    assert "runs/tour" in steps[1][2]  # then its export is served
    assert steps[2][:2] == ("python", "import kemo")  # and its run used from Python


def _workdir(tmp: Path, data_dir: Path) -> tuple[Path, dict]:
    for name in ("scripts", "configs", "benchmarks"):
        (tmp / name).symlink_to(ROOT / name)
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir), "TF_CPP_MIN_LOG_LEVEL": "2",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return tmp, env


def _run(kind, head, script, cwd, env, data_dir):
    script = script.replace("../shared/data/brighter/track_a", str(data_dir))
    cmd = ["bash", "-euo", "pipefail", "-c", script] if kind == "bash" else \
        [sys.executable, "-c", script]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, (f"README block {head!r} exited {proc.returncode}:\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


@pytest.mark.slow
def test_readme_blocks_run_in_order(data_dir, tmp_path):
    cwd, env = _workdir(tmp_path, data_dir)
    for kind, head, script in plan(README.read_text()):
        _run(kind, head, script, cwd, env, data_dir)
    assert (cwd / "runs" / "tour" / "predictions" / "test" / "submission.zip").is_file()
    assert (cwd / "runs" / "ens" / "report.json").is_file()


def test_export_snippet_runs_tensorflow_only(tiny_run, data_dir, tmp_path):
    """The README's five lines serve an export in a fresh process where kemo, keras_hub
    and JAX cannot be imported (TensorFlow and tensorflow-text only; tensorflow-text
    itself imports TensorFlow's Keras), and export.json carries the same lines."""
    import json

    from kemo.cli import main

    cwd = tmp_path / "user"
    (cwd / "runs").mkdir(parents=True)
    assert main(["export", str(tiny_run), "--out", str(cwd / "runs" / "tour" / "export"),
                 "--no-benchmark"]) == 0
    snippet = [body for lang, body in readme_blocks(README.read_text())
               if lang == "python" and "import tensorflow_text" in body]
    assert len(snippet) == 1
    info = json.loads((cwd / "runs" / "tour" / "export" / "export.json").read_text())
    written = info["saved_model"]["python"]
    assert written[2] == f"model = tf.saved_model.load({str(cwd / 'runs/tour/export/saved_model')!r})"
    readme_lines = snippet[0].strip().splitlines()
    assert readme_lines[:2] == written[:2] and readme_lines[3:] == written[3:]
    block = ("import importlib.abc, importlib.machinery, sys\n"
             "class _Block(importlib.abc.MetaPathFinder):\n"
             "    def find_spec(self, name, path=None, target=None):\n"
             "        if name.split('.')[0] in ('kemo', 'keras_hub', 'jax', 'jaxlib'):\n"
             "            raise ImportError(f'{name} blocked: TensorFlow-only process')\n"
             "sys.meta_path.insert(0, _Block())\n")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    proc = subprocess.run([sys.executable, "-c", block + snippet[0]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [ln.split() for ln in proc.stdout.splitlines()]
    assert [r[0] for r in rows] == info["label_names"], proc.stdout  # named, in order
    assert all(re.fullmatch(r"\d\.\d{3}", r[1]) and r[2] in ("0", "1") for r in rows), rows


def test_api_example_runs(tiny_run, data_dir, tmp_path):
    """The README's Python API block, as written, on a trained run at runs/tour: it
    prints each text's predicted labels and probabilities by the run's label names, and
    the dev scores per language."""
    import json

    block = [body for lang, body in readme_blocks(README.read_text())
             if lang == "python" and body.startswith("import kemo")]
    assert len(block) == 1
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "tour").symlink_to(tiny_run)
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", block[0]], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    labels = json.loads((tiny_run / "thresholds.json").read_text())["label_names"]
    out = proc.stdout
    assert all(f"p_{n}" in out for n in labels) and "I can't stop smiling today" in out
    assert "macro_f1" in out and "\neng " in out and "\nmean " in out and "\nall " in out


def test_links_resolve():
    """The README's relative links (benchmark detail lives in benchmarks/README.md) point
    at files that exist, and each `#anchor` at a heading of that file."""
    for page in (README, ROOT / "benchmarks" / "README.md"):
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path) if path else page
            assert file.exists(), f"{page.name}: link {target!r}: no such file"
            if anchor:
                heads = [_anchor(h) for h in re.findall(r"^#+ (.*)$", file.read_text(), re.M)]
                assert anchor in heads, f"{page.name}: link {target!r}: no such heading"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces -> '-'."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
