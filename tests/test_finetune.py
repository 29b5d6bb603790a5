"""`kemo finetune`: per-language runs from a multilingual one, compared on the same
validation rows, the winners served by a specialist ensemble; and the routing rule."""

import json

import numpy as np
import pytest

from conftest import ROOT, TINY_OVERRIDES, assert_refused, run_cli, snapshot

SOURCE_SETS = [*TINY_OVERRIDES, 'data.languages=["eng", "deu"]', "data.max_train_examples=700",
               "thresholds.per_language=true"]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ft") / "multi"
    rc, _, err = run_cli(["train", "--config", ROOT / "configs" / "tiny.toml", "--run-dir",
                          run_dir, "--quiet", *[a for s in SOURCE_SETS for a in ("--set", s)]])
    assert rc == 0, err[-2000:]
    return run_dir


@pytest.fixture(scope="module")
def tuned(source, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "out"
    rc, stdout, err = run_cli(["finetune", source, "--out", out, "--quiet", "--set",
                               "train.epochs=1", "--set", "train.learning_rate=3e-3"])
    assert rc == 0, err[-3000:]
    return out, stdout


def test_each_language_is_compared_on_the_rows_the_source_validated_it_on(source, tuned):
    out, stdout = tuned
    table = json.loads((out / "finetune.json").read_text())
    assert [r["language"] for r in table["rows"]] == ["eng", "deu"]
    src = json.loads((source / "report.json").read_text())
    setting = src["meta"]["decides_with"]
    src_val = set(np.loadtxt(source / "predictions_val.csv", dtype=str, delimiter=",",
                             skiprows=1, usecols=0, comments=None).tolist())
    for row in table["rows"]:
        lang = row["language"]
        assert row["val_source"] == src["validation"][setting]["per_language"][lang]["macro"]["f1"]
        assert row["kept"] == (row["val_finetuned"] > row["val_source"])
        mine = json.loads((out / lang / "report.json").read_text())
        assert mine["meta"]["init_from"]["run"] == str(source.resolve())
        ids = np.loadtxt(out / lang / "predictions_val.csv", dtype=str, delimiter=",",
                         skiprows=1, usecols=0, comments=None).tolist()
        assert set(ids) <= src_val  # its validation rows are the source's
        assert lang in stdout
    assert table["kept"] == [r["language"] for r in table["rows"] if r["kept"]]


def test_running_it_again_continues_instead_of_training_again(source, tuned):
    out, _ = tuned
    before = {p: p.stat().st_mtime_ns for p in out.glob("*/model.keras")}
    rc, stdout, err = run_cli(["finetune", source, "--out", out, "--quiet"])
    assert rc == 0, err[-2000:]
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/model.keras")} == before


def test_a_specialist_ensemble_routes_each_language_to_its_own_run(source, tuned, tmp_path):
    from kemo.ensemble import build_ensemble
    from kemo.prediction.predictor import load_predictor
    from kemo.prediction.trained_run import load_run

    out, _ = tuned
    report = build_ensemble([source, out / "deu"], tmp_path / "sys", serve="specialist",
                            per_language=True)
    served = report["meta"]["served_by"]
    assert [p.split("/")[-1] for p in served["deu"]] == ["deu"]
    assert [p.split("/")[-1] for p in served["eng"]] == ["multi"]
    system = load_predictor(tmp_path / "sys")
    texts = ["Ich bin so wütend auf dich", "I am scared of the dark"]
    got = system.predict_probs(texts, langs=["deu", "eng"])
    deu, multi = load_run(out / "deu"), load_run(source)
    cols = [system.label_names.index(n) for n in deu.label_names]
    np.testing.assert_allclose(got[0, cols], deu.predict_probs(texts[:1])[0], atol=1e-6)
    cols = [system.label_names.index(n) for n in multi.label_names]
    np.testing.assert_allclose(got[1, cols], multi.predict_probs(texts[1:])[0], atol=1e-6)
    # averaging instead (the default) mixes the source into deu
    avg = load_predictor(tmp_path / "sys")
    avg.serve = "average"
    assert not np.allclose(avg.predict_probs(texts[:1], langs=["deu"])[0], got[0])


def test_compare_keeps_a_run_only_when_it_wins_on_validation():
    from kemo.finetune import compare_language
    from kemo.run.report_file import Report

    def report(val, dev):
        return Report.from_dict({"meta": {"decides_with": "tuned_thresholds"},
                "validation": {"tuned_thresholds": {"per_language": {"eng": {"macro": {"f1": val}}}}},
                "dev": {"tuned_thresholds": {"per_language": {"eng": {"macro": {"f1": dev}}}}}})

    assert compare_language(report(0.5, 0.5), report(0.6, 0.1), "eng")["kept"]
    # a better dev never decides
    assert not compare_language(report(0.5, 0.1), report(0.4, 0.9), "eng")["kept"]
    assert not compare_language(report(0.5, 0.5), report(0.5, 0.5), "eng")["kept"]


def test_refuses_a_language_the_source_never_trained_on(source, tmp_path):
    before = snapshot(tmp_path)
    rc, out, err = run_cli(["finetune", source, "--out", tmp_path / "o", "--languages", "hau"])
    assert_refused(rc, out, err, ["hau", "not among the source run's languages"], before,
                   snapshot(tmp_path))


def test_the_export_routes_by_language_as_predict_does(source, tuned, tmp_path):
    """The SavedModel's `serve_languages` signature (TensorFlow alone) gives what the
    specialist system's predict gives for texts of each language, thresholds included."""
    import textwrap

    from kemo.ensemble import build_ensemble
    from kemo.prediction.predictor import load_predictor
    from kemo.serving.export import export_run
    from kemo.serving.tf_only import run_tf_only

    out, _ = tuned
    build_ensemble([source, out / "deu"], tmp_path / "sys", serve="specialist",
                   per_language=True)
    info = export_run(tmp_path / "sys", tmp_path / "exp", benchmark=False)
    assert info["saved_model"]["language_signature"]["languages"] == ["eng", "deu"]
    texts = ["Ich bin so wütend auf dich", "I am scared of the dark", "Je suis content"]
    langs = ["deu", "eng", "fra"]
    got = run_tf_only(textwrap.dedent(f"""
        import json
        serve = tf.saved_model.load({str(tmp_path / 'exp' / 'saved_model')!r})
        out = serve.signatures["serve_languages"](texts=tf.constant({texts!r}),
                                                 languages=tf.constant({langs!r}))
        print(json.dumps({{"probs": out["probabilities"].numpy().tolist(),
                          "decisions": out["decisions"].numpy().tolist()}}))
    """))
    system = load_predictor(tmp_path / "sys")
    probs, decisions = system.predict(texts, langs=langs)
    np.testing.assert_allclose(got["probs"], probs, atol=2e-5)
    assert got["decisions"] == decisions.tolist()
