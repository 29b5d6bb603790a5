"""`model.init_from`: a run starts from a finished run's weights and tokenizer, records
where it came from, refuses what cannot work, and resumes like any run."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, TINY_OVERRIDES, assert_refused, run_cli, snapshot, \
    stop_after_first_checkpoint

# deu annotates all six labels; the source (tiny_run, eng) has five: disgust is new.
SETS = [*TINY_OVERRIDES, "data.languages=[\"deu\"]", "data.max_train_examples=200",
        "train.epochs=1", "train.schedule=\"constant\"", "train.learning_rate=1e-12"]


def _sets(sets):
    return [a for s in sets for a in ("--set", s)]


def _weights(run_dir):
    from kemo.prediction.trained_run import load_run
    from kemo.models.transfer import find_backbone

    run = load_run(run_dir)
    head = run.model.get_layer("logits").get_weights()
    return run, [np.asarray(w) for w in find_backbone(run.model).get_weights()], head


@pytest.fixture(scope="module")
def continued(tiny_run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("init_from") / "deu"
    rc, out, err = run_cli(["train", "--config", ROOT / "configs" / "tiny.toml", "--run-dir",
                            run_dir, "--quiet", *_sets([*SETS, f"model.init_from=\"{tiny_run}\""])])
    assert rc == 0, err[-2000:]
    return run_dir, out


def test_starts_from_the_source_weights_and_tokenizer(tiny_run, continued):
    run_dir, out = continued
    assert "backbone and the head of 5 of 6 labels" in out
    src, src_backbone, (sk, sb) = _weights(tiny_run)
    dst, dst_backbone, (dk, db) = _weights(run_dir)
    assert len(src_backbone) == len(dst_backbone)
    for a, b in zip(src_backbone, dst_backbone):  # a learning rate of 1e-12: unchanged
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert dst.label_names == ["anger", "disgust", "fear", "joy", "sadness", "surprise"]
    for j, name in enumerate(dst.label_names):
        if name in src.label_names:
            np.testing.assert_allclose(dk[:, j], sk[:, src.label_names.index(name)], atol=1e-6)
    # disgust is new: its column is a fresh one, none of the source's
    new = dk[:, dst.label_names.index("disgust")]
    assert all(np.abs(new - sk[:, i]).max() > 1e-3 for i in range(sk.shape[1]))
    assert (src.preprocessor.tokenizer.get_vocabulary()
            == dst.preprocessor.tokenizer.get_vocabulary())


def test_the_run_records_its_source(tiny_run, continued):
    meta = json.loads((continued[0] / "report.json").read_text())["meta"]
    assert meta["init_from"]["run"] == str(tiny_run.resolve())
    manifest = json.loads((tiny_run / "run.json").read_text())
    assert meta["init_from"]["model_sha256"] == manifest["model_sha256"]
    assert meta["init_from"]["labels"] == ["anger", "fear", "joy", "sadness", "surprise"]


@pytest.mark.parametrize("value, extra, needle", [
    ("{missing}", [], "is not a directory"),
    ("{empty}", [], "not a finished kemo run"),
    ("{tiny}", ["model.prune_vocabulary=true"], "model.prune_vocabulary"),
    ("{tiny}", ["model.preset=\"minilm-l6-en\""], "was trained from preset"),
], ids=["missing", "not-a-run", "pruned", "other-preset"])
def test_refuses_a_source_it_cannot_start_from(tiny_run, tmp_path, value, extra, needle):
    (tmp_path / "empty").mkdir()
    source = value.format(missing=tmp_path / "nope", empty=tmp_path / "empty", tiny=tiny_run)
    run_dir = tmp_path / "run"
    before = snapshot(tmp_path)
    rc, out, err = run_cli(["train", "--config", ROOT / "configs" / "tiny.toml", "--run-dir",
                            run_dir, "--quiet",
                            *_sets([*SETS, f"model.init_from=\"{source}\"", *extra])])
    assert_refused(rc, out, err, [needle], before, snapshot(tmp_path))


def test_killed_continued_run_resumes_to_the_same_history(tiny_run, data_dir, tmp_path):
    sets = [*SETS[:-3], "train.epochs=3", "train.learning_rate=1e-3",
            f"model.init_from=\"{tiny_run}\""]
    env = {**os.environ, "KEMO_DATA_DIR": str(data_dir)}

    def cmd(run_dir):
        return [sys.executable, "scripts/train.py", "--backend", "jax", "--config",
                "configs/tiny.toml", "--run-dir", str(run_dir), "--quiet", *_sets(sets)]

    full, killed = tmp_path / "full", tmp_path / "killed"
    subprocess.run(cmd(full), cwd=ROOT, env=env, check=True, capture_output=True)
    code, done = stop_after_first_checkpoint(cmd(killed), killed, signal.SIGKILL, env)
    assert code == -signal.SIGKILL and done < 3
    resumed = subprocess.run([sys.executable, "scripts/train.py", "--resume", str(killed),
                              "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = (json.loads((d / "history.json").read_text()) for d in (full, killed))
    assert [e["epoch"] for e in a] == [e["epoch"] for e in b] == [1, 2, 3]
    for ea, eb in zip(a, b):
        for key in ea:
            assert abs(ea[key] - eb[key]) <= 1e-6, (ea["epoch"], key)


def test_validates_on_the_rows_its_source_validated_on(tiny_run, data_dir):
    """eng, from the eng run, with another cap: the source's validation rows it reads
    validate here and none trains; deu (the source never read it) keeps its own split."""
    from kemo.config import load_config
    from kemo.data.splits import load_data

    src = load_data(load_config(tiny_run / "config.toml"), data_dir)
    cfg = load_config(ROOT / "configs" / "tiny.toml", [
        *TINY_OVERRIDES, "data.languages=[\"eng\", \"deu\"]", "data.max_train_examples=900",
        f"model.init_from=\"{tiny_run}\""])
    got = load_data(cfg, data_dir)
    plain = load_data(load_config(ROOT / "configs" / "tiny.toml", [
        *TINY_OVERRIDES, "data.languages=[\"eng\", \"deu\"]", "data.max_train_examples=900"]),
        data_dir)
    src_val = set(src.val.ids.tolist())
    eng_val = set(got.val.ids[got.val.langs == "eng"].tolist())
    eng_train = set(got.train.ids[got.train.langs == "eng"].tolist())
    assert eng_val and eng_val <= src_val and not eng_train & src_val
    # every source validation row this run read is in its validation split
    read = eng_val | eng_train
    assert src_val & read == eng_val
    # without init_from the split would differ (the test can fail)
    assert set(plain.val.ids[plain.val.langs == "eng"].tolist()) != eng_val
    assert (sorted(got.val.ids[got.val.langs == "deu"].tolist())
            == sorted(plain.val.ids[plain.val.langs == "deu"].tolist()))


def test_a_source_of_another_dataset_leaves_this_runs_split_alone(data_dir, tmp_path):
    """Track A English from a run of a table dataset (GoEmotions-like; its rows under the
    root its run.json records, ids the same strings as Track A's): the source's rows are
    read where its training read them (not under this run's --data-dir: that was
    "train.csv: file not found"), and none of them is taken for one of this run's, so
    the split is the one this run makes without init_from."""
    import pandas as pd

    from kemo.config import load_config
    from kemo.data.splits import load_data

    eng = pd.read_csv(data_dir / "train" / "eng.csv")
    tagged = tmp_path / "tagged"
    tagged.mkdir()
    pd.DataFrame({"id": eng["id"][:60], "text": [f"row {i}" for i in range(60)],
                  "labels": ["joy" if i % 2 else "fear" for i in range(60)]}
                 ).to_csv(tagged / "train.csv", index=False)
    source = tmp_path / "source"
    source.mkdir()
    (source / "config.toml").write_text(
        '[data]\nlayout = "table"\ntrain_file = "train.csv"\nid_column = "id"\n'
        'language = "eng"\nlabel_encoding = "names"\nval_fraction = 0.5\n')
    (source / "run.json").write_text(json.dumps(
        {"format": "kemo run manifest", "version": 1, "data_dir": str(tagged)}))
    sets = [*TINY_OVERRIDES, "data.languages=[\"eng\"]"]
    plain = load_data(load_config(ROOT / "configs" / "tiny.toml", sets), data_dir)
    got = load_data(load_config(ROOT / "configs" / "tiny.toml",
                                [*sets, f"model.init_from=\"{source}\""]), data_dir)
    assert sorted(got.val.ids.tolist()) == sorted(plain.val.ids.tolist())
    assert sorted(got.train.ids.tolist()) == sorted(plain.train.ids.tolist())
    # the source's validation rows carry ids this run reads: the same-dataset rule
    # (not the ids) is what keeps them out
    src = load_data(load_config(source / "config.toml"), tagged)
    read = set(plain.train.ids.tolist()) | set(plain.val.ids.tolist())
    assert len(src.val) == 30 and set(src.val.ids.tolist()) & read
