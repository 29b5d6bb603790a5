"""Token caches: tokenise once (`kemo tokenize`), train and predict without TensorFlow.

One cache of the tiny test config (`kemo tokenize`, module fixture) reads back equal to
tokenising again and is refused for other settings, other data or damage. Training from
it in a process where `tensorflow` and `tensorflow_text` cannot be imported gives the
history and predictions of the tf.data run trained from text (`tiny_run`), and
`predict --tokens` there equals `predict` from text; both on the JAX backend.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import ROOT, TINY_OVERRIDES

TINY = ROOT / "configs" / "tiny.toml"
SETS = [a for o in TINY_OVERRIDES for a in ("--set", o)]
ALL_SPLITS = ("train", "val", "dev", "test")

# Runs `kemo` commands (a JSON list of argv lists) where TensorFlow cannot be imported,
# then reports which TensorFlow modules got loaded anyway (exit 3 if any).
NO_TF = """
import json, sys
sys.modules["tensorflow"] = sys.modules["tensorflow_text"] = None  # unimportable
import keras_hub  # imports without TensorFlow
from kemo.cli import main
for argv in json.loads(sys.argv[1]):
    code = main(argv)
    if code:
        sys.exit(code)
loaded = sorted({m.split(".")[0] for m, v in sys.modules.items() if v is not None
                 and m.split(".")[0] in ("tensorflow", "tensorflow_text", "tf_keras")})
print("tensorflow modules loaded:", loaded)
sys.exit(3 if loaded else 0)
"""


@pytest.fixture(scope="module")
def cfg():
    from kemo.config import load_config

    return load_config(TINY, TINY_OVERRIDES)


@pytest.fixture(scope="module")
def cache(data_dir, tmp_path_factory):
    """`kemo tokenize` of the tiny test config: train, val, dev and test (eng)."""
    from kemo.cli import main

    out = tmp_path_factory.mktemp("tokens") / "tiny"
    assert main(["tokenize", "--config", str(TINY), *SETS, "--data-dir", str(data_dir),
                 "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def no_tf(cache, tiny_run, data_dir, tmp_path_factory):
    """Without TensorFlow: train from the cache, then predict dev from it with tiny_run."""
    root = tmp_path_factory.mktemp("no_tf")
    commands = [
        ["train", "--config", str(TINY), *SETS, "--data-dir", str(data_dir), "--tokens",
         str(cache), "--run-dir", str(root / "run"), "--quiet"],
        ["predict", str(tiny_run), "--tokens", str(cache), "--split", "dev", "--data-dir",
         str(data_dir), "--out", str(root / "predict")],
    ]
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, "-c", NO_TF, json.dumps(commands)], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "tensorflow modules loaded: []" in proc.stdout
    return root


def _expect(cfg, data_dir, splits=ALL_SPLITS):
    from kemo.data.token_cache import expected_manifest

    return expected_manifest(cfg, data_dir, splits)


# ------------------------------------------------------------------ the cache itself

def test_cache_equals_tokenising_again(cache, cfg, data_dir, tiny_run):
    """Tokenising again with the tokenizer tiny_run learnt (the same config, its own
    process of learning the vocabulary) gives the cached ids, split by split."""
    from kemo.data.brighter import load_split
    from kemo.data.pipeline import tokenize, tokenize_splits
    from kemo.data.splits import load_data
    from kemo.data.fingerprints import preset_fingerprint
    from kemo.data.token_cache import TokenCache, load_preset_preprocessor

    c = TokenCache.load(cache, expect=_expect(cfg, data_dir))
    assert c.splits == list(ALL_SPLITS)
    assert preset_fingerprint(tiny_run / "preprocessor") == c.fingerprint
    splits = load_data(cfg, data_dir)
    named = {"train": splits.train, "val": splits.val, "dev": splits.dev,
             "test": load_split(data_dir, "test", ["eng"])}
    pre = load_preset_preprocessor(tiny_run / "preprocessor")
    again = tokenize_splits({name: ex.texts for name, ex in named.items()}, pre)
    again["dev"] = tokenize(splits.dev.texts, pre)  # one split alone tokenises alike
    for name, ex in named.items():
        got = c.arrays(name, ex)
        assert set(got) == set(again[name]) == {"token_ids", "padding_mask", "segment_ids"}
        for key, want in again[name].items():
            assert got[key].dtype == want.dtype, (name, key)
            np.testing.assert_array_equal(got[key], want, err_msg=f"{name} {key}")
    # ragged: only the real tokens are stored, and only for inputs that vary
    with np.load(cache / "test.npz") as z:
        assert sorted(z.files) == ["ids", "langs", "lengths", "values_token_ids"]
        assert len(z["values_token_ids"]) == z["lengths"].sum() < 0.6 * 64 * len(z["ids"])


@pytest.mark.parametrize("override, key", [
    ("data.val_fraction=0.2", "data.val_fraction"),
    ('data.languages=["eng", "hin"]', "data.languages"),
    ("data.max_train_examples=500", "data.max_train_examples"),
    ("data.max_train_examples_per_language=300", "data.max_train_examples_per_language"),
    ("data.split_seed=1", "data.split_seed"),
    ("model.sequence_length=32", "model.sequence_length"),
    ("model.vocabulary_size=3000", "model.vocabulary_size"),
    ('model.preset="e5-small-multi"', "model.preset"),
])
def test_cache_refused_for_other_settings(cache, data_dir, override, key):
    from kemo.config import load_config
    from kemo.data.token_cache import TokenCache
    from kemo.errors import InputError

    other = load_config(TINY, TINY_OVERRIDES + [override])
    with pytest.raises(InputError) as e:
        TokenCache.load(cache, expect=_expect(other, data_dir, ("train", "val", "dev")))
    message = str(e.value)
    assert "\n" not in message and str(cache / "manifest.json") in message
    assert key in message, message
    TokenCache.load(cache, expect=_expect(load_config(TINY, TINY_OVERRIDES), data_dir))


def test_cache_refused_for_changed_data_or_damage(cache, cfg, data_dir, tmp_path):
    from kemo.data.token_cache import TokenCache
    from kemo.errors import InputError

    root = tmp_path / "data"
    for split in ("train", "dev", "test"):
        (root / split).mkdir(parents=True)
        shutil.copy(data_dir / split / "eng.csv", root / split / "eng.csv")
    TokenCache.load(cache, expect=_expect(cfg, root))  # a copy is the same data
    with open(root / "dev" / "eng.csv", "a") as f:
        f.write("eng_dev_extra,one more row,0,0,0,0,0\n")
    with pytest.raises(InputError, match=r"data file dev/eng\.csv changed"):
        TokenCache.load(cache, expect=_expect(cfg, root))

    damaged = tmp_path / "damaged"
    shutil.copytree(cache, damaged)
    raw = bytearray((damaged / "val.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (damaged / "val.npz").write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"val\.npz: damaged"):
        TokenCache.load(damaged)
    shutil.rmtree(damaged / "preprocessor" / "assets")
    (damaged / "val.npz").write_bytes((cache / "val.npz").read_bytes())
    with pytest.raises(InputError, match=r"preprocessor: not the tokenizer"):
        TokenCache.load(damaged)


def test_cli_refuses_mismatched_cache(cache, data_dir, tmp_path, capsys):
    from kemo.cli import main

    run_dir = tmp_path / "run"
    code = main(["train", "--config", str(TINY), *SETS, "--set", "data.val_fraction=0.2",
                 "--data-dir", str(data_dir), "--tokens", str(cache), "--run-dir", str(run_dir)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {cache / 'manifest.json'}: ") and "data.val_fraction" in err[0]
    assert not run_dir.exists()
    out = tmp_path / "not_a_cache"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code = main(["tokenize", "--config", str(TINY), *SETS, "--data-dir", str(data_dir),
                 "--out", str(out)])
    assert code == 2 and "is not a token cache" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


# ---------------------------------------------------------------- without TensorFlow

def _probs(path):
    df = pd.read_csv(path)
    return df["id"].tolist(), df[[c for c in df if c.startswith("p_")]].to_numpy()


def test_train_from_cache_without_tensorflow_equals_tf_data_run(no_tf, tiny_run, cache):
    from kemo.data.fingerprints import preset_fingerprint

    run = no_tf / "run"
    a = json.loads((tiny_run / "history.json").read_text())
    b = json.loads((run / "history.json").read_text())
    assert [e["epoch"] for e in a] == [e["epoch"] for e in b] == [1, 2]
    for ea, eb in zip(a, b):
        assert set(ea) == set(eb)
        for key in ea:
            assert abs(ea[key] - eb[key]) <= 1e-5, (ea["epoch"], key, ea[key], eb[key])
    for name in ("predictions_dev.csv", "predictions_val.csv"):
        ids_a, pa = _probs(tiny_run / name)
        ids_b, pb = _probs(run / name)
        assert ids_a == ids_b
        np.testing.assert_allclose(pa, pb, atol=1e-5, rtol=0)
    # the run wrote its own cache and a preprocessor/ of the cache's tokenizer
    fingerprint = json.loads((cache / "manifest.json").read_text())["tokenizer"]["fingerprint"]
    assert preset_fingerprint(run / "preprocessor") == fingerprint
    assert json.loads((run / "tokens" / "manifest.json").read_text())["splits"].keys() == \
        {"train", "val", "dev"}


def test_predict_from_tokens_equals_predict_from_text(no_tf, tiny_run, data_dir, tmp_path):
    from kemo.cli import main

    out = tmp_path / "text"
    assert main(["predict", str(tiny_run), "--split", "dev", "--data-dir", str(data_dir),
                 "--out", str(out)]) == 0
    ids_a, pa = _probs(out / "probs_eng.csv")
    ids_b, pb = _probs(no_tf / "predict" / "probs_eng.csv")
    assert ids_a == ids_b and len(ids_a) > 100
    np.testing.assert_allclose(pa, pb, atol=1e-5, rtol=0)
    assert (out / "pred_eng.csv").read_text() == (no_tf / "predict" / "pred_eng.csv").read_text()


def test_predict_tokens_refuses_files_not_in_cache(cache, tiny_run, data_dir, tmp_path, capsys):
    from kemo.cli import main

    code = main(["predict", str(tiny_run), "--tokens", str(cache), "--split", "dev",
                 "--languages", "hin", "--untrained-labels", "zero", "--data-dir", str(data_dir),
                 "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "hin.csv: not among the files" in err[0], err
    assert not any(tmp_path.iterdir())


def test_resume_reads_the_run_tokens(tiny_run, cfg, data_dir, tmp_path, capsys):
    """--resume of a run whose tokens/ exist reads them (no tokenising), after checking."""
    from kemo.errors import InputError
    from kemo.training import train

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "report.json").unlink()  # as if killed after the last checkpoint
    capsys.readouterr()
    train(cfg, data_dir=data_dir, run_dir=run, verbose=0, resume=True)
    out = capsys.readouterr().out
    assert f"tokens from {run / 'tokens'}" in out and "tokenised in" not in out

    (run / "report.json").unlink()
    manifest = json.loads((run / "tokens" / "manifest.json").read_text())
    manifest["config"]["data.val_fraction"] = 0.3
    (run / "tokens" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"tokens/manifest\.json: .*data\.val_fraction"):
        train(cfg, data_dir=data_dir, run_dir=run, verbose=0, resume=True)
