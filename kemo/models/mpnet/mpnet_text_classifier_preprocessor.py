"""MPNet's text classifier preprocessor: `<s> text </s>` padded with `<pad>`.

Tokenises with `MPNetTokenizer` and packs like RoBERTa (`<s> a </s></s> b </s>` for
pairs), cutting to `sequence_length` tokens special tokens included, as HF's
`RobertaProcessing` post-processor with truncation does. Outputs `token_ids` and
`padding_mask` (no `segment_ids`: MPNet has no segment embedding). Works on Python
strings and on string tensors inside `tf.data` or a `tf.function`.

Example:
    pre = MPNetTextClassifierPreprocessor(MPNetTokenizer(vocab), sequence_length=8)
    pre(["Hello, World!"])["token_ids"]   # [[0, 7596, 1014, 2092, 1003, 2, 1, 1]]
"""

from __future__ import annotations

import keras
import keras_hub
from keras_hub.layers import MultiSegmentPacker

from kemo.models.mpnet.mpnet_backbone import MPNetBackbone
from kemo.models.mpnet.mpnet_tokenizer import MPNetTokenizer


@keras.saving.register_keras_serializable(package="kemo")
class MPNetTextClassifierPreprocessor(keras_hub.models.TextClassifierPreprocessor):
    """Tokenises and packs text for an `MPNetBackbone` (see the module docstring).

    Args:
        tokenizer: an `MPNetTokenizer`.
        sequence_length: int. Length of the packed inputs.
        truncate: `"round_robin"` or `"waterfall"`, for several segments.
    """

    backbone_cls = MPNetBackbone
    tokenizer_cls = MPNetTokenizer

    def build(self, input_shape):
        self.packer = MultiSegmentPacker(
            start_value=self.tokenizer.start_token_id,
            end_value=self.tokenizer.end_token_id,
            sep_value=[self.tokenizer.end_token_id] * 2,
            pad_value=self.tokenizer.pad_token_id,
            truncate=self.truncate,
            sequence_length=self.sequence_length,
        )
        self.built = True

    def call(self, x, y=None, sample_weight=None):
        output = super().call(x, y=y, sample_weight=sample_weight)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(output)
        del x["segment_ids"]  # the backbone has no segment input
        return keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
