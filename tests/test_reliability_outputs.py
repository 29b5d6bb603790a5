"""Outputs appear whole or not at all, and kemo never deletes or overwrites what it did
not write (issue 20): predict interrupted while writing keeps the earlier complete file
and says what it left; `report --out` and `tokenize --out` refuse a folder holding a
user's file; an interrupted tokenize leaves no partial folder; options may come before
predict's files."""

import shutil

import numpy as np
import pandas as pd

from _reliability import copy_run, kemo, refused
from conftest import ROOT, TINY_OVERRIDES


def _texts(tmp_path, n=6):
    path = tmp_path / "texts.csv"
    path.write_text("id,text\n" + "".join(f"t{i},I am happy {i}\n" for i in range(n)))
    return path


def test_options_before_files(tiny_run, tmp_path):
    out = tmp_path / "out"
    rc, _, err = kemo("predict", tiny_run, "--out", out, _texts(tmp_path))
    assert rc == 0, err
    assert (out / "texts.predictions.csv").is_file()


def test_interrupted_predict_keeps_the_earlier_file_whole(tiny_run, data_dir, tmp_path,
                                                          monkeypatch, restore_sigint):
    out = tmp_path / "out"
    eng = data_dir / "dev" / "eng.csv"
    rc, _, err = kemo("predict", tiny_run, eng, "--out", out)
    assert rc == 0, err
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = pd.DataFrame.to_csv
    calls = []

    def interrupted(self, path=None, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:  # the second file: half of it written, then Ctrl-C
            text = real(self, None, *args, **kwargs)
            open(path, "w").write(text[:len(text) // 2])
            raise KeyboardInterrupt
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", interrupted)
    rc, _, err = kemo("predict", tiny_run, eng, "--out", out, "--overwrite")
    assert rc == 130
    assert "interrupted:" in err and "pred_eng.csv" in err and "half-written" in err
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(after) == set(before)  # no temporary file left beside them
    assert after["probs_eng.csv"] == before["probs_eng.csv"]  # the earlier file, whole
    assert after["submission.zip"] == before["submission.zip"]


def test_report_out_refuses_a_users_folder(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    mine = tmp_path / "site"
    mine.mkdir()
    (mine / "index.html").write_text("my own page")
    rc, _, err = kemo("report", run, "--out", mine)
    refused(rc, err, mine, "index.html", "did not write")
    assert (mine / "index.html").read_text() == "my own page"
    assert [p.name for p in tmp_path.iterdir() if ".partial-" in p.name] == []


def test_report_out_replaces_its_own_report_only(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path / "run")
    out = tmp_path / "report"
    rc, _, err = kemo("report", run, "--out", out)
    assert rc == 0, err
    assert (out / "index.html").is_file() and (out / ".kemo-report").is_file()
    rc, _, err = kemo("report", run, "--out", out)  # kemo's own folder: replaced
    assert rc == 0, err
    (out / "notes.txt").write_text("mine")
    rc, _, err = kemo("report", run, "--out", out)
    refused(rc, err, "notes.txt", "did not write")
    assert (out / "notes.txt").read_text() == "mine"


def _tokenize(out):
    sets = [a for s in TINY_OVERRIDES + ["data.max_train_examples=200"] for a in ("--set", s)]
    return kemo("tokenize", "--config", ROOT / "configs" / "tiny.toml", *sets, "--out", out)


def test_tokenize_out_refuses_a_cache_holding_a_users_file(tiny_run, tmp_path):
    cache = shutil.copytree(tiny_run / "tokens", tmp_path / "cache")
    (cache / "notes.npz").write_bytes(b"my own array")
    before = sorted(p.name for p in cache.iterdir())
    rc, _, err = _tokenize(cache)
    refused(rc, err, cache, "notes.npz", "did not write")
    assert sorted(p.name for p in cache.iterdir()) == before
    assert (cache / "notes.npz").read_bytes() == b"my own array"


def test_interrupted_tokenize_leaves_no_partial_folder(tmp_path, monkeypatch,
                                                       restore_sigint):
    cache = tmp_path / "cache"
    rc, _, err = _tokenize(cache)  # an earlier, complete cache
    assert rc == 0, err
    before = {p.name: p.read_bytes() for p in cache.iterdir() if p.is_file()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    rc, _, err = _tokenize(cache)
    assert rc == 130
    assert "interrupted: token cache" in err and "earlier cache is kept" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # no .partial-<pid>
    assert {p.name: p.read_bytes() for p in cache.iterdir() if p.is_file()} == before
