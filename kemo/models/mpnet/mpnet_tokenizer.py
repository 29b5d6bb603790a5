"""MPNet's tokenizer: BERT's uncased WordPiece with RoBERTa-style special tokens.

The vocabulary is MPNet's `vocab.txt` (30,527 entries): `<s>` (0, start), `<pad>` (1),
`</s>` (2, end and separator), `<unk>` (3, unused), BERT's `[PAD]`, `[unused*]`, `[UNK]`
(104, the out-of-vocabulary token HF's tokenizer really emits) ... and `<mask>` last.
Lower-casing and accent stripping are on, as HF's `BertNormalizer(lowercase=True,
strip_accents=None)` does. keras-hub's WordPiece still differs from HF's on NFKC case
folding and non-ASCII whitespace (see `kemo.weights.match_hf_tokenizer`), and special
tokens typed in the text are not recognised (`special_tokens_in_strings=False`).

Example:
    tokenizer = MPNetTokenizer(vocabulary="all-mpnet-base-v2/vocab.txt")
    tokenizer(["Hello, World!"])   # [[7596, 1014, 2092, 1003]]
"""

from __future__ import annotations

import keras
import keras_hub

from kemo.models.mpnet.mpnet_backbone import MPNetBackbone


@keras.saving.register_keras_serializable(package="kemo")
class MPNetTokenizer(keras_hub.tokenizers.WordPieceTokenizer):
    """A WordPiece tokenizer with MPNet's special tokens.

    Args:
        vocabulary: a list of tokens or a `vocab.txt` path (one token a line).
        lowercase: bool. Lower-case the text first (MPNet-base is uncased).
        strip_accents: bool. Remove accents (HF does for uncased vocabularies).
        oov_token: str. The out-of-vocabulary token (`[UNK]` in MPNet's vocabulary).
    """

    backbone_cls = MPNetBackbone

    def __init__(self, vocabulary=None, lowercase=True, strip_accents=True,
                 oov_token="[UNK]", **kwargs):
        self._add_special_token("<s>", "cls_token")
        self._add_special_token("</s>", "sep_token")
        self._add_special_token("<pad>", "pad_token")
        self._add_special_token("<mask>", "mask_token")
        self._add_special_token("<s>", "start_token")
        self._add_special_token("</s>", "end_token")
        super().__init__(vocabulary=vocabulary, lowercase=lowercase,
                         strip_accents=strip_accents, oov_token=oov_token, **kwargs)
