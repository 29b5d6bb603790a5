"""The Python API (`kemo.load`): predict texts or a DataFrame and evaluate, one call
each, with the run's own labels and thresholds; the same numbers as the commands."""

import json

import numpy as np
import pandas as pd
import pytest

import kemo
from kemo.data.brighter import LABELS
from kemo.errors import InputError


@pytest.fixture(scope="module")
def clf(tiny_run):
    return kemo.load(tiny_run)


def test_import_kemo_loads_no_keras():
    import subprocess
    import sys

    code = "import sys, kemo; print(callable(kemo.load), 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.split() == ["True", "False"]


def test_labels_and_thresholds_come_from_the_run(clf, tiny_run):
    saved = json.loads((tiny_run / "thresholds.json").read_text())
    assert clf.labels == saved["label_names"]
    assert clf.labels != list(LABELS) and "disgust" not in clf.labels  # eng has none
    assert clf.thresholds == dict(zip(saved["label_names"], saved["thresholds"]))
    assert clf.languages == ["eng"]
    assert "eng" in repr(clf) and str(tiny_run) in repr(clf)


def test_predict_texts_gives_probabilities_and_decisions_by_label_name(clf):
    texts = ["I can't stop smiling today", "I am so scared of the dark"]
    out = clf.predict(texts)
    probs, decisions = clf.predictor.predict(texts, langs=["eng", "eng"])
    assert list(out.columns) == ["text", "labels", *[f"p_{n}" for n in clf.labels],
                                 *clf.labels]
    assert out["text"].tolist() == texts
    np.testing.assert_allclose(out[[f"p_{n}" for n in clf.labels]].to_numpy(), probs,
                               rtol=1e-6)
    assert (out[clf.labels].to_numpy() == decisions).all()
    for k in range(2):
        assert out["labels"][k] == ", ".join(n for n in clf.labels if out[n][k] == 1)
    one = clf.predict("I can't stop smiling today")  # a single string
    assert len(one) == 1 and one["labels"][0] == out["labels"][0]
    none = clf.predict([])
    assert len(none) == 0 and list(none.columns) == list(out.columns)


def test_predict_a_dataframe_keeps_its_ids(clf):
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["so happy", "so scared"],
                          "lang": ["eng", "eng"]})
    out = clf.predict(frame)
    assert out.index.tolist() == ["a", "b"] and out["text"].tolist() == ["so happy", "so scared"]
    with pytest.raises(InputError, match="no 'text' column"):
        clf.predict(pd.DataFrame({"sentence": ["x"]}))
    with pytest.raises(InputError, match="3 language codes for 2 texts"):
        clf.predict(["a", "b"], langs=["eng"] * 3)


def test_evaluate_dev_equals_the_runs_own_dev_report(clf, tiny_run, data_dir):
    from kemo.evaluation.finish import decides_with

    table = clf.evaluate("dev")
    assert table.index.tolist() == ["eng", "mean", "all"]
    assert list(table.columns) == ["rows", "macro_f1", "micro_f1", *clf.labels]
    report = json.loads((tiny_run / "report.json").read_text())
    setting = decides_with(clf.predictor.config.thresholds)
    dev = report["dev"][setting]
    assert table.loc["eng", "rows"] == len(pd.read_csv(data_dir / "dev" / "eng.csv"))
    assert table.loc["all", "macro_f1"] == pytest.approx(dev["overall"]["macro"]["f1"], abs=1e-6)
    assert table.loc["mean", "macro_f1"] == pytest.approx(table.loc["eng", "macro_f1"])
    # the same rows as a DataFrame: the same scores
    frame = pd.read_csv(data_dir / "dev" / "eng.csv").assign(lang="eng")
    again = clf.evaluate(frame)
    assert again.loc["eng", "macro_f1"] == pytest.approx(table.loc["eng", "macro_f1"])
    with pytest.raises(InputError, match="no labels"):
        clf.evaluate("test")
