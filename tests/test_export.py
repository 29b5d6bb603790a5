"""`kemo export`: the tiny run's model.keras and raw-text SavedModel, reloaded elsewhere.

Each artefact is reloaded in a fresh subprocess and compared with the in-process
`Run.predict_probs` on real BRIGHTER dev texts (English, Hindi, Amharic, Chinese) plus
the empty string, emoji, whitespace and 10k-character texts. The SavedModel process
imports TensorFlow with Keras, keras-hub and JAX made unimportable (`import tensorflow`
would otherwise import the installed Keras and JAX on its own) and registers only the
tensorflow-text ops: the export must run without them.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import kemo_log
from kemo.cli import main
from kemo.serving.export import export_run
from kemo.serving.tf_only import run_tf_only

ROOT = Path(__file__).resolve().parents[1]
LONG = 10_000


@pytest.fixture(scope="module")
def texts(data_dir):
    out = []
    for lang in ("eng", "hin", "amh", "chn"):
        out += pd.read_csv(data_dir / "dev" / f"{lang}.csv")["text"].head(3).tolist()
    english = " ".join(pd.read_csv(data_dir / "dev" / "eng.csv")["text"].head(200))
    out += ["", "😀😂🎉🔥❤️", "   ", "Ünïcödé façade, naïve café!", "I LOVE THIS!!! 😍",
            (english * (LONG // len(english) + 1))[:LONG],  # many words
            "ha" * (LONG // 2)]                                # one 10k-character word
    assert all(isinstance(t, str) for t in out) and len(out[-2]) == len(out[-1]) == LONG
    return out


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "export"
    with kemo_log() as lines:
        info = export_run(tiny_run, out, batch_size=8, repeats=3)
    return out, info, lines


@pytest.fixture(scope="module")
def reference(tiny_run, texts):
    from kemo.data.pipeline import tokenize
    from kemo.prediction.trained_run import load_run

    run = load_run(tiny_run)
    probs = run.predict_probs(texts)
    lengths = tokenize(texts, run.preprocessor)["padding_mask"].sum(axis=1)
    return run, probs, run.thresholds.apply(probs), lengths


def test_long_texts_are_truncated_in_process(reference):
    run, _, _, lengths = reference
    seq_len = run.config.model.sequence_length
    assert lengths[-2] == seq_len  # cut to the max, [CLS] ... [SEP] included
    assert lengths.max() == seq_len


def test_export_writes_artefacts_and_metadata(exported, reference):
    out, info, lines = exported
    run = reference[0]
    assert (out / "model.keras").is_file()
    assert (out / "preprocessor" / "preprocessor.json").is_file()
    assert (out / "saved_model" / "saved_model.pb").is_file()
    assert not list(out.parent.glob(".export.*")), "staging directory left behind"
    saved = json.loads((out / "export.json").read_text())
    assert saved == json.loads(json.dumps(info))
    assert saved["label_names"] == run.label_names
    assert saved["thresholds"] == pytest.approx(run.thresholds.thresholds)
    pre = saved["preprocessing"]
    assert pre["sequence_length"] == run.config.model.sequence_length == 64
    assert pre["lowercase"] is True and pre["tokenizer_kind"] == "wordpiece"
    assert pre["tokenizer"] == "BertTokenizer"
    assert saved["saved_model"]["padded_lengths"] == [32, 64]
    assert saved["versions"]["keras"] and saved["versions"]["kemo"]
    lat = saved["latency"]
    assert lat["batch_size"] == 8 and lat["repeats"] == 3
    assert 0 < lat["warm_median_s"] and 0 < lat["cold_s"]
    printed = "\n".join(lines)
    assert "MB on disk" in printed and "cold" in printed and "warm median" in printed
    assert saved["saved_model"]["size_bytes"] > 0


def test_saved_model_runs_with_tensorflow_only(exported, reference, texts, tmp_path):
    out = exported[0]
    run, probs, decisions, _ = reference
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    result = run_tf_only(textwrap.dedent(f"""
        import json
        texts = json.loads(open({str(tmp_path / "texts.json")!r}, encoding="utf-8").read())
        model = tf.saved_model.load({str(out / "saved_model")!r})
        serve = model.signatures["serving_default"]
        full = serve(texts=tf.constant(texts))
        single = serve(texts=tf.constant(texts[:1]))
        empty = serve(texts=tf.constant([], tf.string))
        print(json.dumps({{
            "probs": full["probabilities"].numpy().tolist(),
            "decisions": full["decisions"].numpy().tolist(),
            "decision_dtype": full["decisions"].dtype.name,
            "single": single["probabilities"].numpy().tolist(),
            "empty": empty["probabilities"].shape.as_list(),
            "inputs": {{k: [v.dtype.name, v.shape.as_list()]
                        for k, v in serve.structured_input_signature[1].items()}},
            "outputs": sorted(serve.structured_outputs),
            "label_names": [s.decode() for s in model.label_names.numpy()],
            "thresholds": model.thresholds.numpy().tolist(),
            "modules": sorted(m for m in sys.modules
                              if m.split(".")[0] in ("keras", "keras_hub", "jax")),
        }}))
    """))
    assert result["modules"] == []
    assert "keras" not in result["modules"] and "keras_hub" not in result["modules"]
    assert result["inputs"] == {"texts": ["string", [None]]}
    assert result["outputs"] == ["decisions", "logits", "probabilities"]
    assert result["label_names"] == run.label_names
    sm_probs = np.asarray(result["probs"], dtype="float32")
    assert sm_probs.shape == probs.shape
    assert np.abs(sm_probs - probs).max() <= 1e-5
    assert result["decision_dtype"] == "int32"
    np.testing.assert_array_equal(np.asarray(result["decisions"]), decisions)
    # Thresholds baked in: the SavedModel's own decisions follow its probabilities.
    np.testing.assert_array_equal(np.asarray(result["decisions"]),
                                  run.thresholds.apply(sm_probs))
    # A batch of one short text: other batch size and padded length, same answer.
    assert np.abs(np.asarray(result["single"]) - probs[:1]).max() <= 1e-5
    assert result["empty"] == [0, len(run.label_names)]


def test_keras_model_reloads_in_safe_mode(exported, reference, texts, tmp_path):
    out = exported[0]
    _, probs, _, _ = reference
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    script = textwrap.dedent(f"""
        import json, os, sys
        sys.path.insert(0, {str(ROOT)!r})
        import keras
        import numpy as np
        import kemo.prediction.trained_run  # registers kemo's loss, metrics and pooling layer
        from kemo.data.pipeline import tokenize
        from kemo.prediction.batches import predict_probs

        out = {str(out)!r}
        info = json.load(open(os.path.join(out, "export.json")))
        model = keras.models.load_model(os.path.join(out, "model.keras"), safe_mode=True)
        pre_dir = os.path.join(out, "preprocessor")
        pre = keras.saving.deserialize_keras_object(
            json.load(open(os.path.join(pre_dir, "preprocessor.json"))))
        pre.load_preset_assets(pre_dir)
        texts = json.loads(open({str(tmp_path / "texts.json")!r}, encoding="utf-8").read())
        probs = predict_probs(model, tokenize(texts, pre), 64,
                              info["saved_model"]["padded_lengths"])
        np.save({str(tmp_path / "probs.npy")!r}, probs)
    """)
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reloaded = np.load(tmp_path / "probs.npy")
    assert reloaded.shape == probs.shape
    assert np.abs(reloaded - probs).max() <= 1e-6


def test_cli_refuses_bad_run_and_foreign_out_dir(tmp_path, tiny_run, capsys):
    assert main(["export", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert main(["export", str(tiny_run), "--out", str(foreign), "--no-benchmark"]) == 2
    assert "not an earlier kemo export" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "keep me"
