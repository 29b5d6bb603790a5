"""Build an XLM-R `sentencepiece.bpe.model` from a Hugging Face Unigram `tokenizer.json`.

keras-hub's `XLMRobertaTokenizer` wants the original SentencePiece model, whose ids are
fairseq's minus one: spm `<unk>`=0, `<s>`=1, `</s>`=2, then the same pieces as HF ids
4.. (HF/fairseq adds `<pad>`=1 in front and `<mask>` at the end; keras-hub re-adds both
with its +1 id offset). The normaliser is `nmt_nfkc` with the `precompiled_charsmap`
taken from tokenizer.json, so both tokenisers share one character map.

One known difference remains (see tests/test_weights.py): SentencePiece trims trailing
whitespace, whereas tokenizer.json's Metaspace pre-tokeniser turns it into one extra
`▁` token (id 6) before `</s>`.

Example:
    proto = xlmr_sentencepiece_model(json.loads(Path("tokenizer.json").read_text()))
    Path("sentencepiece.bpe.model").write_bytes(proto)
"""

from __future__ import annotations

import base64

from kemo.weights.errors import WeightFormatError

FAIRSEQ_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]


def _precompiled_charsmap(tok: dict, source: str) -> bytes:
    norm = tok.get("normalizer") or {}
    stack = [norm]
    while stack:
        n = stack.pop()
        if n.get("type") == "Precompiled":
            return base64.b64decode(n["precompiled_charsmap"])
        stack.extend(n.get("normalizers") or [])
    raise WeightFormatError(f"{source}: normalizer has no Precompiled charsmap "
                            "(expected an XLM-R style tokenizer.json)")


def xlmr_sentencepiece_model(tok: dict, source: str = "tokenizer.json") -> bytes:
    """Serialised SentencePiece ModelProto equivalent to an XLM-R Unigram tokenizer.json."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = tok.get("model") or {}
    vocab = model.get("vocab") or []
    if model.get("type") != "Unigram" or len(vocab) < 6:
        raise WeightFormatError(f"{source}: expected a Unigram model with a vocabulary, "
                                f"got type {model.get('type')!r} with {len(vocab)} entries")
    if [p for p, _ in vocab[:4]] != FAIRSEQ_SPECIALS or vocab[-1][0] != "<mask>":
        raise WeightFormatError(
            f"{source}: expected XLM-R ids <s>=0 <pad>=1 </s>=2 <unk>=3 ... <mask>=last, "
            f"got {[p for p, _ in vocab[:4]]} ... {vocab[-1][0]!r}"
        )
    m = pb.ModelProto()
    for piece, ptype in (("<unk>", pb.ModelProto.SentencePiece.UNKNOWN),
                         ("<s>", pb.ModelProto.SentencePiece.CONTROL),
                         ("</s>", pb.ModelProto.SentencePiece.CONTROL)):
        p = m.pieces.add()
        p.piece, p.score, p.type = piece, 0.0, ptype
    for piece, score in vocab[4:-1]:
        p = m.pieces.add()
        p.piece, p.score = piece, float(score)  # type defaults to NORMAL
    ts = m.trainer_spec
    ts.model_type = pb.TrainerSpec.UNIGRAM
    ts.vocab_size = len(m.pieces)
    ts.unk_id, ts.bos_id, ts.eos_id, ts.pad_id = 0, 1, 2, -1
    ts.unk_piece, ts.bos_piece, ts.eos_piece = "<unk>", "<s>", "</s>"
    ns = m.normalizer_spec
    ns.name = "nmt_nfkc"
    ns.precompiled_charsmap = _precompiled_charsmap(tok, source)
    ns.add_dummy_prefix = True
    ns.remove_extra_whitespaces = True
    ns.escape_whitespaces = True
    return m.SerializeToString()
