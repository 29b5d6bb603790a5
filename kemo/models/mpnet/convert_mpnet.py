"""Hugging Face MPNet checkpoints -> `MPNetBackbone`, `MPNetTokenizer`, preprocessor.

keras-hub has no MPNet converter, so kemo reads an HF MPNet preset itself, in the
shape of keras-hub's `utils/transformers/convert_*.py`: `config.json` (`model_type ==
"mpnet"`) gives the architecture, `model.safetensors` (or a sharded index) the weights,
`vocab.txt` and `tokenizer_config.json` the tokenizer. A preset is a local directory or
an `hf://owner/name` handle; files are fetched with keras-hub's own `get_file` (which
downloads and caches handles where the hub is reachable) and weights read with its
`SafetensorLoader` (any `mpnet.` prefix, as in `MPNetForMaskedLM`, is found by it).

Example:
    path = kemo.weights.resolve("mpnet-base-en")
    is_mpnet_preset(path)                                   # True
    backbone = load_mpnet_backbone(path)                    # 109.5M weights
    preprocessor = load_mpnet_preprocessor(path, sequence_length=128)
"""

from __future__ import annotations

import json

import numpy as np

from kemo.errors import InputError
from kemo.models.mpnet.mpnet_backbone import MPNetBackbone
from kemo.models.mpnet.mpnet_text_classifier_preprocessor import MPNetTextClassifierPreprocessor
from kemo.models.mpnet.mpnet_tokenizer import MPNetTokenizer

HF_NUM_BUCKETS = 32     # HF's compute_position_bias always buckets into 32
HF_MAX_DISTANCE = 128


def _get_file(preset: str, name: str) -> str:
    from keras_hub.src.utils.preset_utils import get_file

    return get_file(preset, name)


def _load_json(preset: str, name: str) -> dict:
    with open(_get_file(preset, name), encoding="utf-8") as f:
        return json.load(f)


def is_mpnet_preset(preset: str) -> bool:
    """Whether `preset` is a Hugging Face MPNet checkpoint (local dir or `hf://`).

    Other presets (keras-hub presets, Kaggle handles, other architectures) and
    handles that cannot be fetched give False, so keras-hub's own loader reports them.
    """
    if not isinstance(preset, str) or preset.startswith(("kaggle://", "gs://", "modelscope://")):
        return False
    if not preset.startswith("hf://"):
        from pathlib import Path

        if not (Path(preset).expanduser() / "config.json").is_file():
            return False
        preset = str(Path(preset).expanduser())
    try:
        config = _load_json(preset, "config.json")
    except Exception:  # no hub, no such handle: not ours to report
        return False
    return isinstance(config, dict) and config.get("model_type") == "mpnet"


def convert_backbone_config(hf_config: dict) -> dict:
    """`MPNetBackbone` arguments from an HF `MPNetConfig` dict."""
    act = hf_config.get("hidden_act", "gelu")
    if act != "gelu":
        raise InputError(f"MPNet config: hidden_act {act!r} is not supported (expected 'gelu')")
    buckets = hf_config.get("relative_attention_num_buckets", HF_NUM_BUCKETS)
    if buckets != HF_NUM_BUCKETS:
        raise InputError(f"MPNet config: relative_attention_num_buckets {buckets} is not "
                         f"supported (HF buckets into {HF_NUM_BUCKETS} whatever it says)")
    padding_idx = hf_config.get("pad_token_id", 1)
    return {
        "vocabulary_size": hf_config["vocab_size"],
        "num_layers": hf_config["num_hidden_layers"],
        "num_heads": hf_config["num_attention_heads"],
        "hidden_dim": hf_config["hidden_size"],
        "intermediate_dim": hf_config["intermediate_size"],
        "dropout": hf_config.get("hidden_dropout_prob", 0.1),
        "max_sequence_length": hf_config["max_position_embeddings"] - padding_idx - 1,
        "num_buckets": HF_NUM_BUCKETS,
        "max_distance": HF_MAX_DISTANCE,
        "layer_norm_epsilon": hf_config.get("layer_norm_eps", 1e-12),
        "padding_idx": padding_idx,
    }


def _transpose(x, shape):
    return np.transpose(x)


def convert_weights(backbone: MPNetBackbone, loader, hf_config: dict) -> None:
    """Copy HF `MPNetModel` weights into `backbone` (the pooler is not used)."""
    port = loader.port_weight
    port(backbone.token_embedding.embeddings, "embeddings.word_embeddings.weight")
    port(backbone.position_embedding.embeddings, "embeddings.position_embeddings.weight")
    port(backbone.embeddings_layer_norm.gamma, "embeddings.LayerNorm.weight")
    port(backbone.embeddings_layer_norm.beta, "embeddings.LayerNorm.bias")
    port(backbone.relative_position_bias.embeddings, "encoder.relative_attention_bias.weight")
    for i, layer in enumerate(backbone.transformer_layers):
        p = f"encoder.layer.{i}."
        for dense, name in [(layer.query_dense, "attention.attn.q"),
                            (layer.key_dense, "attention.attn.k"),
                            (layer.value_dense, "attention.attn.v"),
                            (layer.output_dense, "attention.attn.o"),
                            (layer.intermediate_dense, "intermediate.dense"),
                            (layer.feedforward_output_dense, "output.dense")]:
            port(dense.kernel, p + name + ".weight", hook_fn=_transpose)
            port(dense.bias, p + name + ".bias")
        for norm, name in [(layer.attention_layer_norm, "attention.LayerNorm"),
                           (layer.feedforward_layer_norm, "output.LayerNorm")]:
            port(norm.gamma, p + name + ".weight")
            port(norm.beta, p + name + ".bias")


def load_mpnet_backbone(preset: str, load_weights: bool = True, **kwargs) -> MPNetBackbone:
    """An `MPNetBackbone` from an HF MPNet preset (`kwargs` override its config)."""
    from keras_hub.src.utils.transformers.safetensor_utils import SafetensorLoader

    hf_config = _load_json(preset, "config.json")
    backbone = MPNetBackbone(**{**convert_backbone_config(hf_config), **kwargs})
    if load_weights:
        with SafetensorLoader(preset) as loader:
            convert_weights(backbone, loader, hf_config)
    return backbone


def load_mpnet_tokenizer(preset: str, **kwargs) -> MPNetTokenizer:
    """An `MPNetTokenizer` from an HF preset's `vocab.txt` and `tokenizer_config.json`."""
    try:
        tok_config = _load_json(preset, "tokenizer_config.json")
    except Exception:
        tok_config = {}
    lowercase = bool(tok_config.get("do_lower_case", True))
    strip = tok_config.get("strip_accents")
    with open(_get_file(preset, "vocab.txt"), encoding="utf-8") as f:
        vocabulary = [line.rstrip("\n").rstrip("\r") for line in f]
    while vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    return MPNetTokenizer(
        vocabulary=vocabulary, lowercase=lowercase,
        strip_accents=lowercase if strip is None else bool(strip),
        oov_token=tok_config.get("unk_token", "[UNK]") or "[UNK]", **kwargs,
    )


def load_mpnet_preprocessor(preset: str, sequence_length: int = 512,
                            **kwargs) -> MPNetTextClassifierPreprocessor:
    """An `MPNetTextClassifierPreprocessor` for an HF MPNet preset."""
    return MPNetTextClassifierPreprocessor(load_mpnet_tokenizer(preset),
                                           sequence_length=sequence_length, **kwargs)
