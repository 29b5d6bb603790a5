"""Materialised weights are checked against what built them (issue 20): the marker
records every file's size and sha256; a truncated file is seen at once (size), an
altered one on `weights fetch` / `weights verify` and on first use in a process; both
are built again or refused in one line, never used. A weights folder that is a file or
cannot be written is one error line. A fake offline model keeps this fast."""

import json

import pytest

from _reliability import kemo, refused
from conftest import kemo_log
from kemo import weights
from kemo.weights import OfflineModel
from kemo.weights._store import MARKER

PAYLOAD = bytes(range(256)) * 40


def _build(tmp):
    (tmp / "model.safetensors").write_bytes(PAYLOAD)
    (tmp / "config.json").write_text("{}")
    return {"num_params": 10}


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setitem(weights.OFFLINE_MODELS, "fake", OfflineModel(
        name="fake", description="a test model", hf_name="test/fake", languages="en",
        tokenizer="BertTokenizer", num_layers=1, hidden_dim=4, vocabulary_size=10,
        license="MIT", sources=("fake==1",), build=_build))
    monkeypatch.setattr(weights, "_HASHED", set())
    cache = tmp_path / "cache"
    monkeypatch.setenv("KEMO_WEIGHTS_DIR", str(cache))
    rc, out, err = kemo("weights", "fetch", "fake")
    assert rc == 0, err
    return cache / "fake"


def test_marker_records_size_and_sha256(fake):
    import hashlib

    marker = json.loads((fake / MARKER).read_text())
    rec = marker["files"]["model.safetensors"]
    assert rec == {"size": len(PAYLOAD), "sha256": hashlib.sha256(PAYLOAD).hexdigest()}


def test_truncated_file_is_listed_damaged_and_fetched_again(fake):
    (fake / "model.safetensors").write_bytes(PAYLOAD[:100])
    rc, out, _ = kemo("weights", "list")
    assert rc == 0
    assert any(line.startswith("fake") and "DAMAGED" in line for line in out.splitlines())
    assert not weights.is_materialised("fake")
    rc, out, err = kemo("weights", "fetch", "fake")
    assert rc == 0, err
    assert "damaged" in out and "truncated or altered" in out and "already there" not in out
    assert (fake / "model.safetensors").read_bytes() == PAYLOAD


def test_altered_file_is_refused_by_verify_and_rebuilt_by_fetch(fake):
    data = bytearray(PAYLOAD)
    data[7] ^= 1  # same size
    (fake / "model.safetensors").write_bytes(bytes(data))
    rc, _, err = kemo("weights", "verify", "fake")
    refused(rc, err, fake / "model.safetensors", "sha256")
    rc, out, err = kemo("weights", "fetch", "fake")
    assert rc == 0, err
    assert "damaged" in out
    assert (fake / "model.safetensors").read_bytes() == PAYLOAD
    rc, out, err = kemo("weights", "verify", "fake")
    assert rc == 0, err


def test_first_use_in_a_process_checks_the_hash(fake, monkeypatch):
    data = bytearray(PAYLOAD)
    data[0] ^= 1
    (fake / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(weights.WeightsNotMaterialised, match="sha256"):
        weights.resolve("fake")
    with kemo_log() as lines:
        assert weights.ensure("fake") == fake
    assert "damaged" in lines[0]
    assert (fake / "model.safetensors").read_bytes() == PAYLOAD


def test_weights_folder_that_is_a_file(monkeypatch, fake, tmp_path):
    bad = tmp_path / "a_file"
    bad.write_text("x")
    monkeypatch.setenv("KEMO_WEIGHTS_DIR", str(bad))
    rc, _, err = kemo("weights", "fetch", "fake")
    refused(rc, err, bad, "KEMO_WEIGHTS_DIR", "not a folder")


def test_weights_folder_that_cannot_be_written(monkeypatch, fake, tmp_path):
    bad = tmp_path / "a_file"
    bad.write_text("x")
    monkeypatch.setenv("KEMO_WEIGHTS_DIR", str(bad / "below"))
    rc, _, err = kemo("weights", "fetch", "fake")
    refused(rc, err, bad / "below", "KEMO_WEIGHTS_DIR", "cannot write")
