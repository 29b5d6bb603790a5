"""Every file kind a run directory holds, altered: `kemo predict` either gives the pristine
run's results (exit 0) or refuses in one `error:` line (exit 2). Never other results with
exit 0, never a traceback.

The alterations are seeded (`KEMO_FUZZ_RUN_SEED`, default 0): truncation at a random
point, random byte flips, an empty file, and for JSON files edits that keep them valid
JSON (a number made NaN, out of range or a string, a key removed). Ensembles and weights
have their own refusal tests (test_reliability_ensemble.py, test_reliability_weights.py).
"""

import json
import os
import random
import shutil

import pytest

from conftest import run_cli

SEED = int(os.environ.get("KEMO_FUZZ_RUN_SEED", "0"))


def _predict(run, out, *extra):
    return run_cli(["predict", run, "--split", "dev", "--out", out, *extra])


def _results(out):
    pred = (out / "pred_eng.csv").read_text()
    probs = (out / "probs_eng.csv").read_text()
    return pred, probs


@pytest.fixture(scope="module")
def pristine(tiny_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz-run")
    run = base / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    code, _, err = _predict(run, base / "pristine")
    assert code == 0, err
    code, _, err = _predict(run, base / "pristine-tokens", "--tokens", run / "tokens")
    assert code == 0, err
    return run, _results(base / "pristine"), _results(base / "pristine-tokens")


def _truncate(data: bytes, rng) -> bytes:
    return data[:rng.randrange(0, max(len(data), 1))]


def _flip(data: bytes, rng) -> bytes:
    b = bytearray(data)
    for _ in range(1 + len(b) // 2000):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


def _json_edit(data: bytes, rng) -> bytes:
    doc = json.loads(data)

    def paths(node, prefix=()):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from paths(v, prefix + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from paths(v, prefix + (i,))
        yield prefix

    leaves = [p for p in paths(doc) if p]
    path = rng.choice(leaves)
    parent = doc
    for k in path[:-1]:
        parent = parent[k]
    kind = rng.choice(["nan", "big", "string", "drop"])
    if kind == "drop" and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = {"nan": float("nan"), "big": 7.5, "string": "x"}.get(kind, None)
    return json.dumps(doc).encode()


MUTATIONS = {"truncate": _truncate, "flip": _flip, "empty": lambda d, r: b""}
# (file in the run directory, mutations, predict from the run's token cache)
CASES = [("model.keras", ["truncate", "flip", "empty"], False),
         ("thresholds.json", ["truncate", "json", "json", "json", "empty"], False),
         ("config.toml", ["truncate", "flip"], False),
         ("report.json", ["truncate", "json"], False),
         ("preprocessor/tokenizer.json", ["truncate", "json"], False),
         ("tokens/manifest.json", ["truncate", "json", "json"], True),
         ("tokens/dev.npz", ["truncate", "flip"], True)]


@pytest.mark.parametrize("name,mutations,tokens", CASES, ids=[c[0] for c in CASES])
def test_an_altered_run_file_gives_the_same_results_or_one_error(pristine, tmp_path, name,
                                                                 mutations, tokens):
    run0, plain, from_tokens = pristine
    rng = random.Random(f"{SEED}-{name}")
    for k, mutation in enumerate(mutations):
        run = tmp_path / f"run{k}"
        shutil.copytree(run0, run)
        target = run / name
        if not target.is_file():
            pytest.skip(f"{name}: not in this run")
        data = target.read_bytes()
        altered = _json_edit(data, rng) if mutation == "json" else MUTATIONS[mutation](data, rng)
        if altered == data:
            continue
        target.write_bytes(altered)
        out = tmp_path / f"out{k}"
        extra = ["--tokens", run / "tokens"] if tokens else []
        code, _, err = _predict(run, out, *extra)
        what = f"{name} ({mutation}, case {k})"
        assert "Traceback" not in err, what + err[-2000:]
        assert code in (0, 2), (what, code, err[-2000:])
        if code == 0:
            assert _results(out) == (from_tokens if tokens else plain), (
                f"{what}: exit 0 with results other than the pristine run's")
        else:
            lines = [ln for ln in err.strip().splitlines() if ln.startswith("error:")]
            assert len(lines) == 1, (what, err[-2000:])
            assert not out.exists() or not any(out.iterdir()), f"{what}: refused but wrote files"
