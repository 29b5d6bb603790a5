"""`kemo ensemble`: two tiny runs averaged, checked by hand, then used like any run.

The second member differs from the session's tiny run only in `train.seed`: the
validation split has its own seed (`data.split_seed`, default 0), so the two validate on
the same rows and form an ensemble with no extra setting. A copy of the tiny run whose
config says `data.split_seed = 1` validated on other rows and is refused.
"""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from kemo.cli import main
from conftest import ROOT, TINY_OVERRIDES, kemo_log


@pytest.fixture(scope="module")
def second_run(data_dir, tmp_path_factory):
    from kemo.config import load_config
    from kemo.training import train

    cfg = load_config(ROOT / "configs" / "tiny.toml",
                      TINY_OVERRIDES + ["train.seed=7"])  # split_seed: the default
    run_dir = tmp_path_factory.mktemp("runs") / "tiny-seed7"
    return train(cfg, data_dir=data_dir, run_dir=run_dir, verbose=0)["run_dir"]


@pytest.fixture(scope="module")
def ensemble(tiny_run, second_run, data_dir, tmp_path_factory):
    from kemo.ensemble import build_ensemble
    from kemo.evaluation.ensemble_tables import format_ensemble_report

    out = tmp_path_factory.mktemp("ens") / "ens"
    with kemo_log() as lines:
        report = build_ensemble([tiny_run, second_run], out, weights=[3, 1], data_dir=data_dir)
    # what `kemo ensemble` shows: the progress it logged, then the report it prints
    return out, report, lines + format_ensemble_report(report).splitlines()


@pytest.fixture(scope="module")
def splits(tiny_run, data_dir):
    from kemo.config import load_config
    from kemo.data.splits import load_data

    return load_data(load_config(tiny_run / "config.toml"), data_dir)


def test_averaged_probabilities_and_decisions_by_hand(ensemble, tiny_run, second_run, splits):
    from kemo.prediction.ensemble_run import EnsembleRun
    from kemo.prediction.predictor import load_predictor
    from kemo.prediction.thresholds import best_f1_threshold

    out, report, _ = ensemble
    run = load_predictor(out)
    assert isinstance(run, EnsembleRun) and run.weights == [0.75, 0.25]
    a, b = load_predictor(tiny_run), load_predictor(second_run)
    texts = list(splits.dev.texts[:40]) + ["", "I am so happy today!"]
    pa, pb = a.predict_probs(texts), b.predict_probs(texts)
    assert np.abs(pa - pb).max() > 1e-3  # two different models
    probs, decisions = run.predict(texts)
    np.testing.assert_allclose(probs, 0.75 * pa + 0.25 * pb, atol=1e-6)
    # Thresholds re-tuned on the shared validation split's averaged probabilities.
    val = splits.val
    avg_val = 0.75 * a.predict_probs(val.texts) + 0.25 * b.predict_probs(val.texts)
    for j, name in enumerate(run.label_names):
        t, _ = best_f1_threshold(val.labels[:, j], avg_val[:, j])
        assert run.thresholds.thresholds[j] == pytest.approx(t, abs=1e-5), name
    t = np.asarray(run.thresholds.thresholds, "float32")
    np.testing.assert_array_equal(decisions, (probs >= t).astype(int))
    # The report: the ensemble and each member on the same dev rows.
    assert set(report["members"]) == {str(tiny_run), str(second_run)}
    member_f1 = json.loads((tiny_run / "report.json").read_text())[
        "dev"]["tuned_thresholds"]["overall"]["macro"]["f1"]
    assert report["members"][str(tiny_run)]["dev"]["tuned_thresholds"]["overall"][
        "macro"]["f1"] == pytest.approx(member_f1, abs=1e-6)


def test_table_printed_side_by_side(ensemble, tiny_run):
    _, report, lines = ensemble
    table = next(line for line in lines if line.startswith("run"))
    assert "dev tuned" in table and "val tuned" in table
    text = "\n".join(lines)
    assert tiny_run.name in text and "ENSEMBLE" in text
    ens_line = next(line for line in text.splitlines() if line.startswith("ENSEMBLE"))
    f1 = report["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"]
    assert f"{f1:.4f}" in ens_line


def test_predict_then_evaluate_matches_the_report(ensemble, data_dir, tmp_path, capsys):
    out, report, _ = ensemble
    preds = tmp_path / "preds"
    assert main(["predict", str(out), "--split", "dev", "--languages", "eng",
                 "--data-dir", str(data_dir), "--out", str(preds)]) == 0
    header = (preds / "pred_eng.csv").read_text().splitlines()[0]
    assert header == "id,Anger,Fear,Joy,Sadness,Surprise"
    assert main(["evaluate", str(preds), "--gold", str(data_dir / "dev"),
                 "--json", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    assert scores["overall"]["macro_f1"] == pytest.approx(
        report["dev"]["tuned_thresholds"]["overall"]["macro"]["f1"], abs=1e-6)
    written = pd.read_csv(out / "predictions_dev.csv", dtype={"id": str})
    probs = pd.read_csv(preds / "probs_eng.csv", dtype={"id": str})
    np.testing.assert_allclose(written.filter(like="p_").to_numpy(),
                               probs.filter(like="p_").to_numpy(), atol=2e-6)


def test_explain_and_report_take_the_ensemble(ensemble, data_dir, tmp_path, capsys):
    out = ensemble[0]
    assert main(["explain", str(out), "--text", "What a wonderful surprise!",
                 "--num-samples", "20", "--out", str(tmp_path / "x")]) == 0
    assert list((tmp_path / "x").glob("*.html"))
    assert main(["report", str(out), "--data-dir", str(data_dir),
                 "--out", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "index.html").read_text()
    assert "Ensemble members" in page and "ENSEMBLE" in page


def test_mismatched_validation_rows_are_refused(tiny_run, second_run, tmp_path, capsys):
    other = tmp_path / "split1"
    shutil.copytree(tiny_run, other)
    cfg = (other / "config.toml").read_text()
    assert "split_seed = 0" in cfg
    (other / "config.toml").write_text(cfg.replace("split_seed = 0", "split_seed = 1"))
    before = sorted(p.name for p in tmp_path.iterdir())
    code = main(["ensemble", str(second_run), str(other), "--run-dir", str(tmp_path / "e")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: member ") and str(other) in err[0]
    assert "data.split_seed" in err[0] and "other rows" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written
    for argv in ([str(tiny_run)], [str(tiny_run), str(tiny_run)],
                 [str(tiny_run), str(second_run), "--weights", "1"],
                 [str(tiny_run), str(second_run), "--weights", "0", "0"]):
        assert main(["ensemble", *argv, "--run-dir", str(tmp_path / "e")]) == 2
        assert capsys.readouterr().err.count("error:") == 1
    assert not (tmp_path / "e").exists()


def test_damaged_ensemble_file_is_named(ensemble, tmp_path, capsys):
    copy = tmp_path / "ens"
    shutil.copytree(ensemble[0], copy)
    meta = json.loads((copy / "ensemble.json").read_text())
    meta["members"][1]["weight"] = float("nan")
    (copy / "ensemble.json").write_text(json.dumps(meta))
    assert main(["predict", str(copy), "--text", "hi"]) == 2
    err = capsys.readouterr().err
    assert "ensemble.json, field 'members.1.weight'" in err and err.count("\n") == 1


def test_export_parity(ensemble, splits, tmp_path):
    from conftest import serve_saved_model
    from kemo.serving.export import export_run
    from kemo.prediction.predictor import load_predictor

    out = tmp_path / "export"
    info = export_run(ensemble[0], out, benchmark=False)
    assert info["ensemble"]["weights"] == [0.75, 0.25]
    assert (out / "members" / "0" / "model.keras").is_file()
    assert (out / "members" / "1" / "preprocessor" / "preprocessor.json").is_file()
    texts = list(splits.dev.texts[:24]) + ["", "😀🎉"]
    run = load_predictor(ensemble[0])
    probs, decisions = run.predict(texts)
    result = serve_saved_model(out / "saved_model", texts, tmp_path)
    assert np.abs(np.asarray(result["probs"]) - probs).max() <= 1e-5
    np.testing.assert_array_equal(np.asarray(result["decisions"]), decisions)


def test_ensemble_honours_thresholds_tune_and_says_what_its_config_is(
        tiny_run, second_run, data_dir, tmp_path):
    """Ensembles finish as training does: members that say `thresholds.tune = false`
    give an ensemble deciding at 0.5 (it used to tune regardless); its config.toml says
    it is an ensemble's, named for the ensemble, not a bare copy of the first member's."""
    import shutil

    from kemo.config import load_config
    from kemo.ensemble import build_ensemble

    members = []
    for run in (tiny_run, second_run):
        copy = tmp_path / run.name
        shutil.copytree(run, copy, ignore=shutil.ignore_patterns("checkpoints"))
        text = (copy / "config.toml").read_text()
        assert "tune = true" in text
        (copy / "config.toml").write_text(text.replace("tune = true", "tune = false"))
        members.append(copy)
    out = tmp_path / "ens-untuned"
    report = build_ensemble(members, out, data_dir=data_dir)
    assert report["meta"]["decides_with"] == "threshold_0.5"
    assert json.loads((out / "thresholds.json").read_text())["thresholds"] == [0.5] * len(
        report["validation"]["threshold_0.5"]["overall"]["per_label"])
    text = (out / "config.toml").read_text()
    assert text.startswith("# kemo ensemble of 2 runs") and "ensemble.json" in text
    assert load_config(out / "config.toml").name == "ens-untuned"


def test_the_python_api_loads_an_ensemble(ensemble, splits):
    """`kemo.load` on an ensemble directory: the same probabilities and decisions as the
    ensemble itself, and an evaluation on dev."""
    import kemo
    from kemo.prediction.predictor import load_predictor

    out, _, _ = ensemble
    clf = kemo.load(out)
    texts = list(splits.dev.texts[:8])
    probs, decisions = load_predictor(out).predict(texts, langs=["eng"] * len(texts))
    pred = clf.predict(texts)
    np.testing.assert_allclose(pred[[f"p_{n}" for n in clf.labels]].to_numpy(), probs,
                               rtol=1e-6)
    assert (pred[clf.labels].to_numpy() == decisions).all() and clf.languages == ["eng"]
    table = clf.evaluate("dev")
    assert table.loc["eng", "rows"] == len(splits.dev) and 0 <= table.loc["mean", "macro_f1"] <= 1


def test_search_weights_chooses_on_validation_and_reports_that_weighting(
        tiny_run, second_run, data_dir, tmp_path, capsys):
    from kemo.ensemble_weights import weight_grid

    out = tmp_path / "searched"
    assert main(["ensemble", str(tiny_run), str(second_run), "--run-dir", str(out),
                 "--search-weights", "0.25", "--data-dir", str(data_dir)]) == 0
    spec = json.loads((out / "ensemble.json").read_text())
    search = spec["weight_search"]
    scores = {tuple(c["weights"]): c["macro_f1"] for c in search["candidates"]}
    assert set(scores) == set(weight_grid(2, 0.25))  # (0.5, 0.5), (0.25, 0.75), (0.75, 0.25)
    chosen = tuple(m["weight"] for m in spec["members"])
    assert scores[chosen] == max(scores.values()) == search["score"]
    report = json.loads((out / "report.json").read_text())
    assert report["validation"]["tuned_thresholds"]["overall"]["macro"]["f1"] == \
        pytest.approx(search["score"], abs=1e-9)  # the ensemble is the chosen weighting
    assert report["meta"]["weights"] == pytest.approx(list(chosen))
    # and the ensemble built with those weights given by hand is the same ensemble
    again = tmp_path / "given"
    assert main(["ensemble", str(tiny_run), str(second_run), "--run-dir", str(again),
                 "--weights", *map(str, chosen), "--data-dir", str(data_dir)]) == 0
    assert (again / "predictions_dev.csv").read_text() == (out / "predictions_dev.csv").read_text()


def test_search_weights_refuses_a_bad_step_or_weights_beside_it(tiny_run, second_run, tmp_path,
                                                                capsys):
    out = tmp_path / "ens"
    assert main(["ensemble", str(tiny_run), str(second_run), "--run-dir", str(out),
                 "--search-weights", "0.3"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "must divide 1" in err and not out.exists()
    with pytest.raises(SystemExit) as e:
        main(["ensemble", str(tiny_run), str(second_run), "--run-dir", str(out),
              "--search-weights", "--weights", "1", "2"])
    assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err
