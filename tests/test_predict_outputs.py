"""`kemo predict` keeps each split in its own folder and never replaces earlier outputs
without `--overwrite` (issue 22: a dev prediction silently replaced the test submission).

- `--split X` writes `<run>/predictions/X/`; FILES write `<run>/predictions/files/`.
- A file already in the output folder (an earlier predict, or training's dev files) is
  refused before the model runs: one `error:` line, exit 2, nothing touched.
- `--split dev` prints the official macro-F1 of what it wrote.
"""

import shutil
import zipfile

import pytest

from conftest import run_cli, snapshot
from kemo.evaluation.scoring import score_submission


@pytest.fixture
def run(tiny_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst)
    return dst


def _refused(code, err, *needles):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), (code, err)
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_splits_go_to_their_own_folders_and_are_never_replaced(run, data_dir):
    code, out, err = run_cli(["predict", run, "--split", "test", "--data-dir", data_dir])
    assert code == 0, err
    test_dir = run / "predictions" / "test"
    with zipfile.ZipFile(test_dir / "submission.zip") as zf:
        assert zf.namelist() == ["track_a/pred_eng.csv"]
    test_ids = (data_dir / "test" / "eng.csv").read_text().splitlines()[1].split(",")[0]
    assert (test_dir / "pred_eng.csv").read_text().splitlines()[1].startswith(test_ids)
    assert "macro-F1" not in out  # test has no labels: nothing to score
    test_files = snapshot(test_dir)

    # Again, or dev over training's own dev files: refused before the model runs.
    before = snapshot(run)
    code, _, err = run_cli(["predict", run, "--split", "test", "--data-dir", data_dir])
    _refused(code, err, str(test_dir / "pred_eng.csv"), "--overwrite")
    code, _, err = run_cli(["predict", run, "--split", "dev", "--data-dir", data_dir])
    _refused(code, err, str(run / "predictions" / "dev" / "pred_eng.csv"), "--overwrite",
             "kemo evaluate")
    assert snapshot(run) == before

    # --overwrite replaces dev, prints its score, and leaves test alone.
    code, out, err = run_cli(["predict", run, "--split", "dev", "--data-dir", data_dir,
                              "--overwrite"])
    assert code == 0, err
    dev_dir = run / "predictions" / "dev"
    scored = score_submission(dev_dir / "submission.zip", data_dir / "dev", ["eng"])
    assert f"dev macro-F1: {scored['overall']['macro_f1']:.4f}" in out
    assert snapshot(test_dir) == test_files
    dev_ids = [r.split(",")[0] for r in (dev_dir / "pred_eng.csv").read_text().splitlines()[1:]]
    gold_ids = [r.split(",")[0]
                for r in (data_dir / "dev" / "eng.csv").read_text().splitlines()[1:]]
    assert dev_ids == gold_ids


def test_files_go_to_predictions_files_and_never_mix_with_a_split(run, data_dir, tmp_path):
    mine = tmp_path / "mine.csv"
    mine.write_text("id,text\n1,I am so happy\n2,\n")
    code, out, err = run_cli(["predict", run, mine])
    assert code == 0, err
    assert (run / "predictions" / "files" / "mine.predictions.csv").is_file()
    assert "warning:" in err and "1 empty text" in err  # the blank row is flagged
    code, _, err = run_cli(["predict", run, mine])
    _refused(code, err, "mine.predictions.csv", "--overwrite")
    code, _, err = run_cli(["predict", run, mine, "--split", "test", "--data-dir", data_dir])
    _refused(code, err, "--split test and FILES write to different folders")


def test_empty_text_is_refused(run):
    code, _, err = run_cli(["predict", run, "--text", "fine", "--text", "  "])
    _refused(code, err, "--text: text 2 is empty")


def test_predict_text_json_gives_one_object_per_text(tiny_run):
    import json

    from conftest import run_cli

    code, out, err = run_cli(["predict", tiny_run, "--text", "I am so happy", "--text",
                              "what a scary night", "--json"])
    assert code == 0, err
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [r["text"] for r in rows] == ["I am so happy", "what a scary night"]
    for r in rows:
        assert set(r["probabilities"]) == set(r["thresholds"])
        assert all(0 <= p <= 1 for p in r["probabilities"].values())
        assert r["labels"] == [n for n, p in r["probabilities"].items()
                               if p >= r["thresholds"][n]]
    code, _, err = run_cli(["predict", tiny_run, "--split", "dev", "--json"])
    assert code == 2 and "--json goes with --text" in err
