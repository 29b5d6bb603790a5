"""The seed configs' own backbone classes, end to end, with tiny random presets.

`configs/seed/*.toml` name two Kaggle presets: `bert_base_multi` (`BertBackbone`, cased
WordPiece `BertTokenizer`) and `xlm_roberta_base_multi` (`XLMRobertaBackbone`,
SentencePiece `XLMRobertaTokenizer`: `<s>`=0, `<pad>`=1, `</s>`=2, no `segment_ids`
input). The hub is unreachable here, so this builds one tiny preset of each class with
random weights (2 layers, hidden 32; a vocabulary learnt from the training texts:
WordPiece for BERT, a SentencePiece unigram model for XLM-R as keras-hub's own tests
train one), saved with keras-hub's `save_to_preset`, and runs every seed config
through the CLI with `--set model.preset=<that dir>`: train one epoch on a small cap,
then predict the test split of its languages. Export is the slow step, so one config
per class is exported (`EXPORTED`); its SavedModel, run in a TensorFlow-only process,
must give the run's own probabilities. The pooling tests check that both poolings
ignore padding whatever the class's padding id.
"""

from __future__ import annotations

import io
import json

import keras
import numpy as np
import pandas as pd
import pytest

from conftest import ROOT
from kemo.cli import main
from kemo.config import load_config

SEED_CONFIGS = sorted(p.stem for p in (ROOT / "configs" / "seed").glob("*.toml"))
PRESET_CLASS = {"bert_base_multi": "bert", "xlm_roberta_base_multi": "xlmr"}
EXPECTED = {  # what keras-hub loads for each preset: backbone, tokenizer, model inputs
    "bert": ("BertBackbone", "BertTokenizer", {"token_ids", "segment_ids", "padding_mask"}),
    "xlmr": ("XLMRobertaBackbone", "XLMRobertaTokenizer", {"token_ids", "padding_mask"}),
}
EXPORTED = ("optimised_bert_eng", "xlmr_eng_hin")  # one per class: export is the slow step
PRESET_LANGUAGES = ("eng", "hin", "mar")  # every language a seed config trains on
PRESET_TEXTS_PER_LANGUAGE = 400
VOCABULARY_SIZE = 1500
ARCHITECTURE = dict(num_layers=2, num_heads=2, hidden_dim=32, intermediate_dim=64,
                    max_sequence_length=128, dropout=0.1)
# One epoch on a small cap; learning rate raised so that one epoch moves the outputs.
OVERRIDES = ["train.epochs=1", "data.max_train_examples=120", "model.sequence_length=32",
             "train.learning_rate=1e-3"]
SERVED_ROWS = 64  # test rows per language fed to the SavedModel


def _training_texts(data_dir) -> list[str]:
    texts = []
    for lang in PRESET_LANGUAGES:
        df = pd.read_csv(data_dir / "train" / f"{lang}.csv")
        texts += df["text"].astype(str).head(PRESET_TEXTS_PER_LANGUAGE).tolist()
    return texts


def build_bert_preset(texts, path) -> None:
    """A tiny `bert_base_multi` look-alike: a cased WordPiece vocabulary learnt from
    `texts`, random weights. The vocabulary comes from the `tokenizers` WordPiece trainer
    (a second; keras-hub's `compute_word_piece_vocabulary`, which `kemo.models.backbones.
    learn_vocabulary` uses, takes over a minute on these texts): BERT's pre-tokenisation
    (whitespace, punctuation) and `##` continuation pieces, as keras-hub's WordPiece reads."""
    import keras_hub
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    from kemo.models.backbones import BERT_SPECIAL_TOKENS

    learner = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    learner.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    learner.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    learner.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=VOCABULARY_SIZE, special_tokens=BERT_SPECIAL_TOKENS, show_progress=False))
    vocab = sorted(learner.get_vocab(), key=learner.get_vocab().get)
    assert vocab[:len(BERT_SPECIAL_TOKENS)] == BERT_SPECIAL_TOKENS
    tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=False)
    backbone = keras_hub.models.BertBackbone(vocabulary_size=tokenizer.vocabulary_size(),
                                             **ARCHITECTURE)
    backbone.save_to_preset(str(path))
    tokenizer.save_to_preset(str(path))


def build_xlmr_preset(texts, path) -> None:
    """A tiny `xlm_roberta_base_multi` look-alike: a SentencePiece unigram model with
    XLM-R's ids (unk 0, bos 1, eos 2 in the proto; the tokenizer shifts them to fairseq's
    <s>=0 <pad>=1 </s>=2 <unk>=3), random weights."""
    import keras_hub
    import sentencepiece

    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=proto, vocab_size=VOCABULARY_SIZE,
        model_type="UNIGRAM", unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        character_coverage=0.9995, num_threads=1, minloglevel=2)
    tokenizer = keras_hub.models.XLMRobertaTokenizer(proto=proto.getvalue())
    backbone = keras_hub.models.XLMRobertaBackbone(
        vocabulary_size=tokenizer.vocabulary_size(), **ARCHITECTURE)
    backbone.save_to_preset(str(path))
    tokenizer.save_to_preset(str(path))


@pytest.fixture(scope="session")
def seed_presets(data_dir, tmp_path_factory) -> dict:
    """{"bert": dir, "xlmr": dir}: keras-hub preset directories (config.json,
    tokenizer.json, model.weights.h5, assets/)."""
    keras.utils.set_random_seed(0)
    texts = _training_texts(data_dir)
    root = tmp_path_factory.mktemp("seed_presets")
    build_bert_preset(texts, root / "bert")
    build_xlmr_preset(texts, root / "xlmr")
    return {"bert": root / "bert", "xlmr": root / "xlmr"}


def _preset_kind(name: str) -> str:
    return PRESET_CLASS[load_config(ROOT / "configs" / "seed" / f"{name}.toml").model.preset]


@pytest.fixture(scope="module")
def seed_runs(seed_presets, data_dir, tmp_path_factory):
    """`get(name)`: the run directory of seed config `name`, trained and its test split
    predicted through the CLI (once per config)."""
    root, done = tmp_path_factory.mktemp("seed_runs"), {}

    def get(name):
        if name not in done:
            done[name] = None  # a failure is not retried by the next test
            run_dir = root / name
            sets = [f"model.preset={seed_presets[_preset_kind(name)]}", *OVERRIDES]
            argv = ["train", "--config", str(ROOT / "configs" / "seed" / f"{name}.toml"),
                    "--data-dir", str(data_dir), "--run-dir", str(run_dir), "--quiet"]
            assert main(argv + [a for s in sets for a in ("--set", s)]) == 0
            # Batches of train.batch_size: the shapes training compiled for its predictions.
            assert main(["predict", str(run_dir), "--split", "test", "--batch-size", "16",
                         "--data-dir", str(data_dir)]) == 0
            done[name] = run_dir
        assert done[name] is not None, f"{name}: training or prediction failed earlier"
        return done[name]

    return get


@pytest.mark.parametrize("name", SEED_CONFIGS)
def test_seed_config_trains_and_predicts_with_its_backbone_class(name, seed_runs, data_dir):
    from kemo.prediction.trained_run import load_run

    run_dir = seed_runs(name)
    kind = _preset_kind(name)
    backbone_cls, tokenizer_cls, inputs = EXPECTED[kind]
    run = load_run(run_dir)
    backbones = [layer for layer in run.model.layers if isinstance(layer, keras.Model)]
    assert [type(b).__name__ for b in backbones] == [backbone_cls]
    assert type(run.preprocessor.tokenizer).__name__ == tokenizer_cls
    assert set(run.model.input) == inputs
    assert run.config.model.pooling == "cls" and run.config.model.sequence_length == 32
    for lang in run.config.data.languages:
        test = pd.read_csv(data_dir / "test" / f"{lang}.csv")
        pred = pd.read_csv(run_dir / "predictions" / "test" / f"pred_{lang}.csv")
        probs = pd.read_csv(run_dir / "predictions" / "test" / f"probs_{lang}.csv")
        assert pred["id"].tolist() == probs["id"].tolist() == test["id"].tolist()
        p = probs[[f"p_{n}" for n in run.label_names]].to_numpy()
        assert np.isfinite(p).all() and ((0 < p) & (p < 1)).all()
        # The texts reach the model: outputs differ from text to text.
        assert np.ptp(p, axis=0).max() > 1e-3, f"{lang}: the same output for every text"


@pytest.mark.parametrize("name", EXPORTED)
def test_exported_saved_model_gives_the_runs_predictions(name, seed_runs, data_dir, tmp_path):
    from conftest import serve_saved_model

    run_dir = seed_runs(name)
    assert main(["export", str(run_dir), "--no-benchmark"]) == 0
    out = run_dir / "export"
    info = json.loads((out / "export.json").read_text())
    tokenizer_cls = EXPECTED[_preset_kind(name)][1]
    assert info["preprocessing"]["tokenizer"] == tokenizer_cls
    texts, expected, decisions = [], [], []
    for lang in load_config(run_dir / "config.toml").data.languages:
        test = pd.read_csv(data_dir / "test" / f"{lang}.csv").head(SERVED_ROWS)
        probs = pd.read_csv(run_dir / "predictions" / "test" / f"probs_{lang}.csv").head(SERVED_ROWS)
        pred = pd.read_csv(run_dir / "predictions" / "test" / f"pred_{lang}.csv").head(SERVED_ROWS)
        assert probs["id"].tolist() == test["id"].tolist()
        texts += test["text"].astype(str).tolist()
        expected.append(probs[[f"p_{n}" for n in info["label_names"]]].to_numpy())
        # pred_<lang>.csv: the language's official label columns (eng has no Disgust),
        # named like "Anger"; -1 where the SavedModel has no such column for this row.
        cols = [info["label_names"].index(c.lower()) for c in pred.columns if c != "id"]
        full = np.full((len(pred), len(info["label_names"])), -1)
        full[:, cols] = pred.drop(columns="id").to_numpy()
        decisions.append(full)
    result = serve_saved_model(out / "saved_model", texts, tmp_path)
    assert result["blocked"] == []
    served, expected = np.asarray(result["probs"]), np.concatenate(expected)
    assert served.shape == expected.shape
    # probs_<lang>.csv holds 6 decimals: 5e-7 of the 1e-5 go to rounding.
    assert np.abs(served - expected).max() <= 1e-5
    # Decisions: the thresholds baked in (labels in the SavedModel's order, as pred's
    # columns are), except where a probability is within rounding of its threshold.
    decided = np.concatenate(decisions)
    skip = (np.abs(served - np.asarray(info["thresholds"])[None, :]) <= 1e-5) | (decided < 0)
    assert (~skip).sum() > len(texts)
    np.testing.assert_array_equal(np.where(skip, 0, np.asarray(result["decisions"])),
                                  np.where(skip, 0, decided))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("kind", ["xlmr", "bert"])
def test_pooling_ignores_padding_whatever_the_pad_id(kind, pooling, seed_presets):
    """Logits do not depend on how far a text is padded, nor on the ids written at
    padded positions: attention and pooling both follow `padding_mask`."""
    from kemo.config import ModelConfig
    from kemo.data.pipeline import tokenize
    from kemo.models import build_classifier, load_backbone, load_preprocessor

    texts = ["I am so happy today!", "No.", "यह सुनकर मुझे बहुत दुख हुआ।",
             "The storm knocked out power for the whole street."]
    cfg = ModelConfig(preset=str(seed_presets[kind]), sequence_length=64, pooling=pooling)
    tokenizer = load_preprocessor(cfg).tokenizer
    backbone = load_backbone(cfg)
    keras.utils.set_random_seed(1)
    model = build_classifier(backbone, num_labels=4, pooling=pooling, dropout=0.0)
    long = tokenize(texts, load_preprocessor(cfg))
    lengths = long["padding_mask"].sum(axis=1)
    assert lengths.max() < 32 and lengths.min() < lengths.max()
    pad = tokenizer.pad_token_id
    assert pad == {"xlmr": 1, "bert": 0}[kind]
    assert set(long) == EXPECTED[kind][2]
    padded = long["padding_mask"] == 0
    assert (long["token_ids"][padded] == pad).all()
    assert (long["token_ids"][:, 0] == tokenizer.token_to_id(
        {"xlmr": "<s>", "bert": "[CLS]"}[kind])).all()
    short = {k: v[:, :32] for k, v in long.items()}  # what a 32-token bucket feeds

    def logits(x):  # eager: no compilation per input shape
        return np.asarray(model(x, training=False))

    reference = logits(long)
    np.testing.assert_allclose(logits(short), reference, atol=1e-5)
    junk = dict(long, token_ids=np.where(padded, 7, long["token_ids"]).astype("int32"))
    np.testing.assert_allclose(logits(junk), reference, atol=1e-5)
    # The shortest text alone (no padding at all) gives its row of the padded batch.
    i = int(np.argmin(lengths))
    alone = {k: v[i:i + 1, :lengths[i]] for k, v in long.items()}
    np.testing.assert_allclose(logits(alone), reference[i:i + 1], atol=1e-5)


@pytest.mark.parametrize("kind", ["xlmr", "bert"])
def test_token_embedding_found_and_frozen(kind, seed_presets):
    """`model.freeze_token_embeddings`: XLM-R nests its token embedding inside
    `embeddings`, where `get_layer("token_embedding")` does not reach."""
    from kemo.config import ModelConfig
    from kemo.models import build_classifier, load_backbone, load_preprocessor
    from kemo.models.backbone_layers import token_embedding

    cfg = ModelConfig(preset=str(seed_presets[kind]), sequence_length=32,
                      freeze_token_embeddings=True)
    vocabulary_size = load_preprocessor(cfg).tokenizer.vocabulary_size()
    backbone = load_backbone(cfg)
    layer = token_embedding(backbone)
    assert layer is not None and tuple(layer.embeddings.shape) == (vocabulary_size, 32)
    layer.trainable = False
    model = build_classifier(backbone, num_labels=3)
    trainable = {id(v) for v in model.trainable_variables}
    assert id(layer.embeddings) not in trainable
    assert len(trainable) == len(model.trainable_variables) > 10
