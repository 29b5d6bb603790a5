"""Shared fixtures: the real BRIGHTER data root and one tiny trained run per session.

The data root comes from $KEMO_DATA_DIR, defaulting to ../shared/data/brighter/track_a
beside the checkout; the default is exported here, so every in-process call and every
`kemo` subprocess a test starts reads the same root as the tests (the README's
`python -m pytest` needs no variable set). Tests run on the JAX backend unless
$KERAS_BACKEND says otherwise.

Ctrl-C: a suite started from a background job or `nohup` inherits SIGINT ignored, and
Python then keeps it ignored. `restore_sigint()` gives a test Python's own handler, and
`with_sigint(cmd)` starts a child with the disposition a terminal would give it, so
the interrupt tests do not depend on how the suite was started.
"""

import contextlib
import hashlib
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(Path.home() / ".cache/kemo/xla"))

import pytest  # noqa: E402

import signal as _signal  # noqa: E402

SIGINT_AT_START = _signal.getsignal(_signal.SIGINT)  # before any test changes it

import kemo.log  # noqa: E402

# In-process calls of library code show kemo's messages as `kemo` commands do (info on
# stdout, warnings on stderr), so a test reads them with capsys either way.
kemo.log.to_console()

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "brighter" / "track_a"
DATA_DIR = Path(os.environ.setdefault("KEMO_DATA_DIR", str(DEFAULT_DATA)))

# Why a test of the torch backend or of Hugging Face's reference is skipped: torch and
# transformers are optional extras (README, Install); CI (.ci/run) installs them.
NO_TORCH = ("torch/transformers not installed (optional: pip install torch --index-url "
            "https://download.pytorch.org/whl/cpu && pip install -e '.[bench]'; CI installs "
            "them)")

# A quick variant of configs/tiny.toml for tests (~20 s on 2 CPU cores).
# Fused attention on, so that every test of a trained run (reload, export, explain,
# resume) covers it.
TINY_OVERRIDES = ["train.epochs=2", "data.max_train_examples=600", "model.sequence_length=64",
                  "data.length_buckets=[32]", "model.fused_attention=true"]


def with_sigint(cmd, disposition: str = "default") -> list:
    """`cmd` (a Python command line) started with SIGINT at its default ("default": the
    child stops on Ctrl-C whatever this process ignores) or ignored ("ignore": as `nohup`
    or a background job starts it). A small Python sets the disposition and execs `cmd`,
    which keeps it across exec; no `preexec_fn`, which forks a multithreaded JAX process."""
    handler = {"default": "SIG_DFL", "ignore": "SIG_IGN"}[disposition]
    setter = (f"import os, signal, sys; signal.signal(signal.SIGINT, signal.{handler}); "
              "os.execv(sys.argv[1], sys.argv[1:])")
    return [sys.executable, "-c", setter, *[str(c) for c in cmd]]


def stop_after_first_checkpoint(cmd, run_dir: Path, sig, env=None, timeout: float = 300):
    """Start the training `cmd` (stopping on SIGINT whatever this process ignores),
    wait for `run_dir`'s first checkpoint, send `sig` (mid-epoch 2 or later) and return
    (exit code, the epoch its last checkpoint holds)."""
    import subprocess
    import time

    proc = subprocess.Popen(with_sigint(cmd), cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = Path(run_dir) / "checkpoints" / "LATEST"
    deadline = time.time() + timeout
    while not latest.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    if not latest.exists():
        proc.kill()
        pytest.fail(f"no checkpoint written in {run_dir}")
    os.kill(proc.pid, sig)
    code = proc.wait(timeout=120)
    return code, int(latest.read_text().split("-")[1])


@pytest.fixture
def restore_sigint():
    """Python's own SIGINT handler for the test, as in a terminal; restored after."""
    import signal

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def load_benchmark(name: str):
    """`benchmarks/<name>.py` imported as a module (benchmarks/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def docstring_nodes(tree) -> set[int]:
    """ids of the docstring constants of a parsed module: the source-scanning tests
    (file names, report keys) skip them, as prose may name what code must not spell."""
    import ast

    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def first_rows(src: Path, root: Path, sizes: dict) -> Path:
    """`root`, a Track A/B-shaped folder of the real files' first rows under `src`:
    `sizes` = {split: {lang: rows}}, each file written back by the csv module."""
    import csv

    for split, langs in sizes.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        for lang, n in langs.items():
            with open(src / split / f"{lang}.csv", encoding="utf-8", newline="") as f:
                rows = list(csv.reader(f))[: n + 1]
            with open(root / split / f"{lang}.csv", "w", encoding="utf-8", newline="") as f:
                csv.writer(f).writerows(rows)
    return root


def write_tiny_config(path: Path, data: dict, model: dict | None = None) -> Path:
    """A tiny config at `path` (named after it): a random 1-layer 32-wide BERT trained
    one epoch, with these `[data]` keys and any extra `[model]` keys."""
    import json

    model = {"num_layers": 1, "num_heads": 2, "hidden_dim": 32, "intermediate_dim": 64,
             "vocabulary_size": 1500, "sequence_length": 48, "pooling": "mean",
             **(model or {})}
    train = {"epochs": 1, "batch_size": 32, "learning_rate": 1e-3}
    lines = [f"name = {json.dumps(path.stem)}"]
    for section, keys in (("data", data), ("model", model), ("train", train)):
        lines += [f"[{section}]"] + [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(argv) -> tuple[int, str, str]:
    """`kemo <argv>` in this process: (exit code, stdout, stderr)."""
    import contextlib
    import io

    from kemo.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def serve_saved_model(saved_model, texts, work_dir: Path) -> dict:
    """Run an exported SavedModel's `serving_default` on raw `texts` in a fresh
    TensorFlow-only process (`kemo.serving.tf_only.run_tf_only`): {"probs", "decisions",
    "blocked"} (the last: Keras/JAX/kemo modules that process loaded; [] expected)."""
    import json
    import textwrap

    from kemo.serving.tf_only import run_tf_only

    texts_file = Path(work_dir) / "texts.json"
    texts_file.write_text(json.dumps(list(texts)))
    return run_tf_only(textwrap.dedent(f"""
        import json
        texts = json.loads(open({str(texts_file)!r}, encoding="utf-8").read())
        serve = tf.saved_model.load({str(saved_model)!r}).signatures["serving_default"]
        got = serve(texts=tf.constant(texts))
        print(json.dumps({{"probs": got["probabilities"].numpy().tolist(),
                          "decisions": got["decisions"].numpy().tolist(),
                          "blocked": blocked_modules_loaded()}}))
    """))


def assert_refused(rc, out, err, needles=(), before=None, after=None):
    """A command refused bad input as kemo promises: exit 2, no traceback, exactly one
    `error:` line holding every needle, and (given snapshots) nothing written."""
    assert rc == 2, f"rc={rc}\nstdout:\n{out[-2000:]}\nstderr:\n{err[-2000:]}"
    assert "Traceback" not in out + err, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("error: "), err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    assert after == before, "files were written or changed"


@contextlib.contextmanager
def kemo_log(name: str = "kemo"):
    """The messages kemo's library code logs inside the block (info and up), in order:
    what a function that logs said (`kemo.log`), without reading the console."""
    lines = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(record.getMessage())

    logger, handler = logging.getLogger(name), Collect()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def snapshot(root: Path) -> dict:
    """Every path under `root`: folders by name; files by size, mtime and content."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_dir():
            out[rel] = "dir"
        else:
            st = p.stat()
            out[rel] = (st.st_size, st.st_mtime_ns, hashlib.sha1(p.read_bytes()).hexdigest())
    return out


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not (DATA_DIR / "train" / "eng.csv").is_file():
        pytest.fail(f"BRIGHTER Track A data not found at {DATA_DIR}; set KEMO_DATA_DIR")
    return DATA_DIR


@pytest.fixture(scope="session")
def tiny_run(data_dir, tmp_path_factory):
    """A finished run directory of the tiny config (eng, 2 epochs on 600 rows), with its
    checkpoints kept (tests copy it as an interrupted run and resume it)."""
    from kemo.config import load_config
    from kemo.training import train

    cfg = load_config(ROOT / "configs" / "tiny.toml", TINY_OVERRIDES)
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    result = train(cfg, data_dir=data_dir, run_dir=run_dir, verbose=0, keep_checkpoints=True)
    return result["run_dir"]
