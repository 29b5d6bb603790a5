"""A run's own records decide, not the input's (issue 20): a Track A input missing or
reordering label columns still gets the submission header of the run's language label
set, and a per-language run whose thresholds.json lost its per-language table (or one
language of it) is refused in one line instead of deciding with the global thresholds."""

import json

import pandas as pd

from _reliability import copy_run, kemo, refused

EN_HEADER = ["id", "Anger", "Fear", "Joy", "Sadness", "Surprise"]


def _dev_eng(data_dir, tmp_path, columns):
    df = pd.read_csv(data_dir / "dev" / "eng.csv", dtype=str, keep_default_na=False).head(40)
    src = tmp_path / "in"
    src.mkdir()
    df[columns].to_csv(src / "eng.csv", index=False)
    return src / "eng.csv"


def test_missing_label_column_still_gives_the_runs_header(tiny_run, data_dir, tmp_path):
    path = _dev_eng(data_dir, tmp_path, ["id", "text", "anger", "fear", "sadness", "surprise"])
    out = tmp_path / "out"
    rc, _, err = kemo("predict", tiny_run, path, "--out", out)
    assert rc == 0, err
    pred = pd.read_csv(out / "pred_eng.csv")
    assert list(pred.columns) == EN_HEADER
    assert len(pred) == 40


def test_reordered_label_columns_give_the_runs_order(tiny_run, data_dir, tmp_path):
    path = _dev_eng(data_dir, tmp_path,
                    ["id", "text", "surprise", "joy", "anger", "sadness", "fear"])
    out = tmp_path / "out"
    rc, _, err = kemo("predict", tiny_run, path, "--out", out)
    assert rc == 0, err
    assert list(pd.read_csv(out / "pred_eng.csv").columns) == EN_HEADER
    # and kemo's own scorer takes it (on the rows it holds)
    gold = tmp_path / "gold"
    gold.mkdir()
    pd.read_csv(data_dir / "dev" / "eng.csv", dtype=str, keep_default_na=False).head(40) \
        .to_csv(gold / "eng.csv", index=False)
    rc, _, err = kemo("evaluate", out, "--gold", gold)
    assert rc == 0, err


def _per_language_copy(tiny_run, dst, languages, kept):
    """The tiny run made to look per-language: report.json says it decides per language
    for `languages`, config.toml trains them, thresholds.json keeps only `kept`."""
    run = copy_run(tiny_run, dst)
    config = (run / "config.toml").read_text()
    start = config.index("languages = [")
    end = config.index("]", start) + 1
    (run / "config.toml").write_text(config[:start] + "languages = " + json.dumps(languages)
                                     + config[end:])
    thresholds = json.loads((run / "thresholds.json").read_text())
    report = json.loads((run / "report.json").read_text())
    report["meta"]["decides_with"] = "per_language_thresholds"
    report["meta"]["per_language_thresholds"] = {lang: thresholds["thresholds"]
                                                 for lang in languages}
    (run / "report.json").write_text(json.dumps(report))
    if kept:
        thresholds["per_language"] = {lang: thresholds["thresholds"] for lang in kept}
    else:
        thresholds.pop("per_language", None)
    (run / "thresholds.json").write_text(json.dumps(thresholds))
    return run


def test_per_language_run_without_its_table_is_refused(tiny_run, tmp_path):
    run = _per_language_copy(tiny_run, tmp_path / "run", ["eng"], [])
    rc, out, err = kemo("predict", run, "--text", "I am so happy")
    refused(rc, err, run / "thresholds.json", "per_language", "eng", "global thresholds")
    assert "predicted" not in out


def test_per_language_run_missing_one_language_is_refused(tiny_run, tmp_path):
    run = _per_language_copy(tiny_run, tmp_path / "run", ["eng", "deu"], ["eng"])
    rc, _, err = kemo("predict", run, "--text", "I am so happy")
    refused(rc, err, run / "thresholds.json", "lacks deu")
    # restored: predicts again
    thresholds = json.loads((run / "thresholds.json").read_text())
    thresholds["per_language"]["deu"] = thresholds["thresholds"]
    (run / "thresholds.json").write_text(json.dumps(thresholds))
    rc, out, err = kemo("predict", run, "--text", "I am so happy")
    assert rc == 0, err


def test_a_model_file_from_elsewhere_is_refused(tiny_run, tmp_path):
    """run.json binds model.keras to its run (sha256 at the end of training): a valid,
    finite model with other weights (copied from another run, or re-saved) is refused in
    one line instead of predicting something else with exit 0; a run from before run.json
    recorded it is not checked."""
    import json
    import shutil

    import keras

    from conftest import run_cli

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("checkpoints"))
    assert json.loads((run / "run.json").read_text())["model_sha256"]
    model = keras.models.load_model(run / "model.keras", compile=False)
    bias = model.get_layer("logits").bias
    bias.assign(bias.numpy() + 0.25)
    model.save(run / "model.keras")
    code, _, err = run_cli(["predict", run, "--text", "so happy today"])
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "model.keras: not the model this run trained" in lines[0], err
    manifest = json.loads((run / "run.json").read_text())
    del manifest["model_sha256"]  # as a run written before the binding
    (run / "run.json").write_text(json.dumps(manifest))
    code, out, err = run_cli(["predict", run, "--text", "so happy today"])
    assert code == 0, err
