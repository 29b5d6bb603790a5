"""Token caches: a run's splits tokenised once, read back without TensorFlow.

`kemo tokenize` (or `train`, into `<run_dir>/tokens/`) writes a directory:

    manifest.json   what the tokens are valid for: the tokenizer's fingerprint, the
                    config keys that decide which rows are in which split, the sha256
                    of every data file read, and one entry per split (rows, sha256)
    <split>.npz     train, val (carved from train), dev, test: row `ids`, `langs`,
                    `lengths` (real tokens per row) and, per model input, the real
                    tokens of every row back to back (`values_<input>`; an input that
                    is one constant, like an all-ones padding mask, stores none)
    preprocessor/   the keras-hub preprocessor preset (it loads without TensorFlow, so a
                    run trained from the cache still writes its own `preprocessor/`)

The tokenizer's fingerprint is `kemo.data.fingerprints.preset_fingerprint` of that
preset (vocabulary, special tokens, lowercasing, sequence_length). `TokenCache.load(path, expect=expected_manifest(cfg, root))`
refuses, in one `InputError` naming `manifest.json`, a cache written for another
tokenizer, languages, caps, validation fraction or split seed, or from data files
that changed since; a damaged split file is refused by its own sha256.

Example:
    cache = TokenCache.write("tokens/e5", {"train": splits.train, ...}, arrays,
                             preprocessor, expected_manifest(cfg, splits.root))
    cache = TokenCache.load("tokens/e5", expect=expected_manifest(cfg, root))
    arrays = cache.arrays("train")   # {"token_ids": (n, sequence_length) int32, ...}
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np

from kemo.checksum import file_sha256
from kemo.config import load_config
from kemo.data.fingerprints import preset_files_sha, preset_fingerprint
from kemo.data.splits import split_seed
from kemo.errors import InputError

log = logging.getLogger(__name__)

FORMAT, VERSION = "kemo token cache", 1
MANIFEST, PREPROCESSOR = "manifest.json", "preprocessor"
SOURCES = {"train": "train", "val": "train", "dev": "dev", "test": "test"}  # split -> folder
RUN_SPLITS = ("train", "val", "dev")  # what `train` tokenises; `kemo tokenize` adds test


def cache_config(cfg) -> dict:
    """The config values a cache must share with a run that uses it: those that decide
    the tokenizer, and those that decide which rows are in which split."""
    m, d = cfg.model, cfg.data
    return {
        "model.preset": m.preset or "",
        "model.preset tokenizer files (sha256)": preset_files_sha(m.preset),
        "model.sequence_length": m.sequence_length,
        # an inline tokenizer's vocabulary is learnt from the training rows
        "model.vocabulary_size": None if m.preset else m.vocabulary_size,
        "data.languages": list(dict.fromkeys(d.languages)),
        "data.max_train_examples": d.max_train_examples,
        "data.max_train_examples_per_language": d.max_train_examples_per_language,
        "data.val_fraction": d.val_fraction,
        "data.split_seed (train.seed when -1)": split_seed(cfg),
        **_dataset_config(d),
    }


def _dataset_config(data) -> dict:
    """A table dataset's description (every [data] key that decides its rows and
    labels); nothing for Track A, so its manifests stay as they were."""
    if data.layout == "track_a" and data.validation == "train" and not data.extra_datasets:
        return {}
    out = _dataset_keys(data)
    if data.extra_datasets:
        out["data.extra_datasets"] = {path: _dataset_keys(load_config(path).data)
                                      for path in data.extra_datasets}
    return out


def _dataset_keys(data) -> dict:
    keys = ("layout", "validation", "train_file", "dev_file", "test_file",
            "unlabelled_splits", "format", "header", "columns", "text_column", "id_column",
            "language_column", "language", "label_encoding", "label_columns",
            "labels_column", "label_separator", "label_names", "label_names_file",
            "label_groups_file", "ungrouped_labels")
    return {f"data.{k}": getattr(data, k) for k in keys + ("languages", "max_train_examples")}


def expected_manifest(cfg, root, splits=RUN_SPLITS) -> dict:
    """What a cache for `cfg` over the data root `root` must hold: `cache_config(cfg)`
    and the sha256 of each data file `splits` read (dev and test where they exist)."""
    from kemo.data.dataset import open_dataset

    dataset = open_dataset(cfg.data, root)
    files = {}
    for source in dict.fromkeys(SOURCES[s] for s in splits):
        for name, path in dataset.files(source).items():
            files[name] = file_sha256(path)
    if "train" in splits:
        for k, extra in enumerate(cfg.data.extra_datasets, 1):
            for name, path in open_dataset(load_config(extra).data).files("train").items():
                files[f"extra {k}: {name}"] = file_sha256(path)
    return {"config": cache_config(cfg), "data_files": files}


def load_preset_preprocessor(preset_dir):
    """The preprocessor saved by `save_to_preset` (no backbone config needed)."""
    import keras

    preset_dir = Path(preset_dir)
    try:
        config = json.loads((preset_dir / "preprocessor.json").read_text())
        preprocessor = keras.saving.deserialize_keras_object(config)
        preprocessor.load_preset_assets(str(preset_dir))
    except Exception as e:
        raise InputError(f"{preset_dir}: cannot load preprocessor "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                         ) from None
    return preprocessor


def _pack(arrays: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Padded (n, sequence_length) inputs -> ragged fields + how to pad them back."""
    mask = arrays["padding_mask"]
    lengths = mask.sum(axis=1).astype("int32")
    real = np.arange(mask.shape[1])[None, :] < lengths[:, None]
    if not np.array_equal(mask > 0, real):
        raise ValueError("padding_mask is not a prefix of ones: cannot store it ragged")
    fields, inputs = {"lengths": lengths}, {}
    for key, a in arrays.items():
        pads, values = np.unique(a[~real]), a[real]
        if len(pads) > 1:
            raise ValueError(f"{key}: padding holds several values {pads[:4]}")
        spec = {"dtype": str(a.dtype), "pad": int(pads[0]) if len(pads) else 0, "fill": None}
        if len(values) and (values == values[0]).all():
            spec["fill"] = int(values[0])
        else:
            fields[f"values_{key}"] = values
        inputs[key] = spec
    return fields, inputs


class TokenCache:
    """A token cache directory (see the module docstring), checked when loaded."""

    def __init__(self, path, manifest: dict):
        self.path, self.manifest = Path(path), manifest
        self._loaded: dict[str, dict] = {}

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    @property
    def fingerprint(self) -> str:
        return self.manifest["tokenizer"]["fingerprint"]

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    # ------------------------------------------------------------------ writing

    @classmethod
    def write(cls, path, examples: dict, arrays: dict, preprocessor, expect: dict,
              seconds: float | None = None) -> "TokenCache":
        """Write `arrays[split]` (tokenised `examples[split]`) with the preprocessor's
        preset and `expect` (`expected_manifest`). `path` must be new, empty, or an
        earlier token cache, which is replaced (into place by one rename)."""
        path = Path(path)
        check_cache_target(path)
        tmp = path.parent / f".{path.name}.partial-{os.getpid()}"
        old = path.parent / f".{path.name}.old-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir(parents=True)
            preprocessor.save_to_preset(str(tmp / PREPROCESSOR))
            splits = {}
            for split, ex in examples.items():
                fields, inputs = _pack(arrays[split])
                np.savez(tmp / f"{split}.npz", ids=np.asarray(ex.ids, str),
                         langs=np.asarray(ex.langs, str), **fields)
                splits[split] = {"source": SOURCES[split], "rows": len(ex), "file": f"{split}.npz",
                                 "sha256": file_sha256(tmp / f"{split}.npz")}
            width = next(iter(arrays.values()))["padding_mask"].shape[1]
            manifest = {
                "format": FORMAT, "version": VERSION,
                "tokenizer": {"fingerprint": preset_fingerprint(tmp / PREPROCESSOR),
                              "class": type(preprocessor.tokenizer).__name__,
                              "vocabulary_size": int(preprocessor.tokenizer.vocabulary_size()),
                              "sequence_length": int(width)},
                **expect, "inputs": inputs, "splits": splits,
                "tokenize_seconds": None if seconds is None else round(seconds, 2)}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))  # last: complete
            if path.exists():
                path.rename(old)
            tmp.rename(path)
        except OSError as e:
            raise InputError(f"token cache {path}: cannot write ({e.strerror or e})") from None
        except KeyboardInterrupt:
            log.warning(f"interrupted: token cache {path}: "
                        + ("the earlier cache is kept as it was" if path.exists() or old.exists()
                           else "not written") + "; nothing partial is left")
            raise
        finally:  # interrupted or failed: no partial folder left, the earlier cache kept
            shutil.rmtree(tmp, ignore_errors=True)
            if old.exists() and not path.exists():
                old.rename(path)
            shutil.rmtree(old, ignore_errors=True)
        return cls(path, manifest)

    # ------------------------------------------------------------------ reading

    @classmethod
    def load(cls, path, expect: dict | None = None) -> "TokenCache":
        """Read and check a cache: its manifest, every split file's sha256, the saved
        preprocessor's fingerprint and, with `expect`, the config and data files."""
        path = Path(path)
        where = path / MANIFEST
        if not where.is_file():
            raise InputError(f"token cache {path}: no {MANIFEST} (not a cache written by "
                             "kemo tokenize or kemo train)")
        try:
            manifest = json.loads(where.read_text())
            ok = (manifest.get("format") == FORMAT and manifest.get("version") == VERSION
                  and isinstance(manifest["tokenizer"]["fingerprint"], str)
                  and isinstance(manifest["config"], dict)
                  and isinstance(manifest["data_files"], dict)
                  and all(isinstance(s["file"], str) and isinstance(s["sha256"], str)
                          and SOURCES.get(name) == s["source"]
                          for name, s in manifest["splits"].items())
                  and all(isinstance(v, dict) for v in manifest["inputs"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise InputError(f"{where}: not a readable token cache manifest "
                             f"({type(e).__name__}: {e})") from None
        if not ok:
            raise InputError(f"{where}: not a {FORMAT} of version {VERSION} "
                             "(tokenise again with kemo tokenize)")
        cache = cls(path, manifest)
        for name, s in manifest["splits"].items():
            f = path / s["file"]
            if Path(s["file"]).name != s["file"] or not f.is_file():
                raise InputError(f"{where}, field 'splits.{name}.file': {f} not found")
            if file_sha256(f) != s["sha256"]:
                raise InputError(f"{f}: damaged or changed since it was written (its sha256 "
                                 f"is not the one {where} records)")
        if preset_fingerprint(path / PREPROCESSOR) != cache.fingerprint:
            raise InputError(f"{path / PREPROCESSOR}: not the tokenizer {where} was written "
                             "with (fingerprint differs)")
        if expect is not None:
            cache.check(expect)
        return cache

    def check(self, expect: dict) -> None:
        """InputError naming `manifest.json` and every difference from `expect`."""
        diffs = []
        have = self.manifest["config"]
        for key, want in expect["config"].items():
            if key not in have or have[key] != want:
                diffs.append(f"{key} = {have.get(key)!r} (the config has {want!r})")
        for name, sha in expect["data_files"].items():
            had = self.manifest["data_files"].get(name)
            if had is None:
                diffs.append(f"data file {name} was not tokenised")
            elif had != sha:
                diffs.append(f"data file {name} changed since (sha256 {had[:12]}... then, "
                             f"{sha[:12]}... now)")
        if diffs:
            raise InputError(f"{self.manifest_path}: tokens written for other settings: "
                             f"{'; '.join(diffs)} (tokenise again: kemo tokenize)")

    def check_tokenizer(self, preset_dir) -> None:
        """InputError unless the preprocessor preset at `preset_dir` (e.g. a run's
        `preprocessor/`) has this cache's fingerprint."""
        if preset_fingerprint(preset_dir) != self.fingerprint:
            raise InputError(f"{self.manifest_path}: tokenised with another tokenizer than "
                             f"{preset_dir} (fingerprint {self.fingerprint[:12]}... vs "
                             f"{preset_fingerprint(preset_dir)[:12]}...)")

    def load_preprocessor(self):
        """The keras-hub preprocessor the tokens were made with (no TensorFlow needed)."""
        return load_preset_preprocessor(self.path / PREPROCESSOR)

    def _split(self, split: str) -> dict:
        if split not in self.manifest["splits"]:
            raise InputError(f"{self.manifest_path}: holds no {split} split "
                             f"(it holds {', '.join(self.splits)})")
        if split not in self._loaded:
            self._loaded[split] = self._read(split)
        return self._loaded[split]

    def _read(self, split: str) -> dict:
        """One split's rows and padded inputs; InputError if the file is inconsistent."""
        f = self.path / self.manifest["splits"][split]["file"]
        width = self.manifest["tokenizer"]["sequence_length"]
        try:
            with np.load(f, allow_pickle=False) as z:
                fields = {k: z[k] for k in z.files}
            ids, langs, lengths = fields["ids"], fields["langs"], fields["lengths"]
            n = self.manifest["splits"][split]["rows"]
            if not (len(ids) == len(langs) == len(lengths) == n
                    and ((lengths >= 0) & (lengths <= width)).all()):
                raise ValueError("rows, ids, langs and lengths disagree")
            vocab = self.manifest["tokenizer"].get("vocabulary_size")
            values = fields.get("values_token_ids")
            if values is not None and len(values) and isinstance(vocab, int) and (
                    values.min() < 0 or values.max() >= vocab):
                raise ValueError(f"token id {int(values.max() if values.max() >= vocab else values.min())}"
                                 f" outside the vocabulary of {vocab}")
            real = np.arange(width)[None, :] < lengths[:, None]
            arrays = {}
            for key, spec in self.manifest["inputs"].items():
                out = np.full((n, width), spec["pad"], np.dtype(spec["dtype"]))
                out[real] = spec["fill"] if spec["fill"] is not None else fields[f"values_{key}"]
                arrays[key] = out
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise InputError(f"{f}: not a readable token split ({type(e).__name__}: {e})"
                             ) from None
        return {"ids": ids.astype(object), "langs": langs.astype(object), "arrays": arrays}

    def arrays(self, split: str, examples=None) -> dict[str, np.ndarray]:
        """The padded model inputs of `split`; with `examples`, InputError unless the
        cache holds exactly their rows (ids and languages, in order)."""
        s = self._split(split)
        if examples is not None:
            ids, langs = np.asarray(examples.ids, object), np.asarray(examples.langs, object)
            if len(ids) != len(s["ids"]) or (ids != s["ids"]).any() or (langs != s["langs"]).any():
                diff = next((i for i in range(min(len(ids), len(s["ids"])))
                             if ids[i] != s["ids"][i]), min(len(ids), len(s["ids"])))
                raise InputError(f"{self.path / self.manifest['splits'][split]['file']}: "
                                 f"{len(s['ids'])} rows, the config's {split} split has "
                                 f"{len(ids)}; they differ from row {diff + 1} on")
        return s["arrays"]

    def file_arrays(self, path, ids) -> dict[str, np.ndarray]:
        """The padded inputs of the rows `ids` of data file `path`, found by its sha256
        among the files the cache tokenised (InputError if absent, changed or partial)."""
        path = Path(path)
        name = self.locate(path)
        source, lang = name.split("/")[0], Path(name).stem
        where: dict = {}
        for split, meta in self.manifest["splits"].items():
            if meta["source"] == source:
                s = self._split(split)
                for r in np.flatnonzero(s["langs"] == lang):
                    where[s["ids"][r]] = (split, r)
        missing = [i for i in ids if i not in where]
        if missing:
            raise InputError(f"{path}: {len(missing)} of its {len(ids)} rows are not in token "
                             f"cache {self.path} (first: id {missing[0]!r}); it holds the rows "
                             "its config used (caps, validation split)")
        width = self.manifest["tokenizer"]["sequence_length"]
        out = {k: np.empty((len(ids), width), np.dtype(spec["dtype"]))
               for k, spec in self.manifest["inputs"].items()}
        found = [where[i] for i in ids]
        for split in dict.fromkeys(s for s, _ in found):
            pos = np.array([j for j, (s, _) in enumerate(found) if s == split])
            rows = np.array([r for s, r in found if s == split])
            for k, v in self._split(split)["arrays"].items():
                out[k][pos] = v[rows]
        return out

    def locate(self, path) -> str:
        """The data file name (`test/eng.csv`) of `path`, matched by content."""
        path = Path(path)
        try:
            sha = file_sha256(path)
        except OSError as e:
            raise InputError(f"{path}: cannot read ({e.strerror})") from None
        files = self.manifest["data_files"]
        same = [n for n, h in files.items() if h == sha]
        here = f"{path.parent.name}/{path.name}"
        if same:
            return here if here in same else same[0]
        if here in files:
            raise InputError(f"{path}: changed since token cache {self.path} tokenised it "
                             "(sha256 differs); tokenise again")
        raise InputError(f"{path}: not among the files token cache {self.path} tokenised "
                         f"({', '.join(files)})")


def check_cache_target(path) -> None:
    """InputError unless `path` is new, an empty directory, or a token cache (which
    `TokenCache.write` replaces)."""
    path = Path(path)
    if not path.exists():
        return
    if not path.is_dir():
        raise InputError(f"token cache {path}: exists and is not a directory")
    entries = {p.name for p in path.iterdir()}
    if not entries:
        return
    marked, ours = False, {MANIFEST, PREPROCESSOR}
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        marked = manifest.get("format") == FORMAT
        ours |= {str(s["file"]) for s in manifest["splits"].values()}
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass
    if not marked:
        raise InputError(f"token cache {path}: exists and is not a token cache (it holds "
                         f"{', '.join(sorted(entries)[:5])}); give a new or empty directory")
    foreign = sorted(entries - ours)
    if foreign:  # replacing the cache would delete them
        raise InputError(f"token cache {path}: holds {', '.join(foreign[:5])}, which kemo did "
                         f"not write (its {MANIFEST} lists no such file); move them away or "
                         "give a new or empty directory")
