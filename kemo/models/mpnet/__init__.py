"""MPNet (all-mpnet-base-v2 and other HF MPNet checkpoints) in keras-hub's style.

One concept per module, as `keras_hub/src/models/bert/`: the backbone and its layers,
the tokenizer, the text classifier preprocessor, and the converter from Hugging Face
checkpoints. Every class is registered as `kemo>ClassName`, so a `model.keras` holding
an `MPNetBackbone` reloads in safe mode once `kemo.models` is imported.

Example:
    from kemo.models.mpnet import load_mpnet_backbone, load_mpnet_preprocessor
    path = kemo.weights.resolve("mpnet-base-en")
    backbone, pre = load_mpnet_backbone(path), load_mpnet_preprocessor(path, 128)
    hidden = backbone(pre(["I can't stop smiling"]))   # (1, 128, 768)
"""

from kemo.models.mpnet.convert_mpnet import (is_mpnet_preset, load_mpnet_backbone,
                                             load_mpnet_preprocessor, load_mpnet_tokenizer)
from kemo.models.mpnet.mpnet_backbone import MPNetBackbone
from kemo.models.mpnet.mpnet_encoder_layer import MPNetEncoderLayer
from kemo.models.mpnet.mpnet_position_embedding import MPNetPositionEmbedding
from kemo.models.mpnet.mpnet_relative_position_bias import MPNetRelativePositionBias
from kemo.models.mpnet.mpnet_text_classifier_preprocessor import MPNetTextClassifierPreprocessor
from kemo.models.mpnet.mpnet_tokenizer import MPNetTokenizer

__all__ = ["MPNetBackbone", "MPNetEncoderLayer", "MPNetPositionEmbedding",
           "MPNetRelativePositionBias", "MPNetTokenizer", "MPNetTextClassifierPreprocessor",
           "is_mpnet_preset", "load_mpnet_backbone", "load_mpnet_tokenizer",
           "load_mpnet_preprocessor"]
