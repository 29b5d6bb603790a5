"""Export a finished run for serving: a Keras model file and a raw-text TF SavedModel.

    kemo export runs/tiny-20261127-231500 [--out DIR]

writes into DIR (default `<run_dir>/export`):

- `model.keras`: the trained classifier (logits). `keras.models.load_model(path,
  compile=False, safe_mode=True)` loads it once `kemo.prediction.trained_run` (or
  `kemo.models.classifier`) is imported, which registers the custom layers (a model saved with its compile config
  also needs `kemo.training.losses` and `kemo.training.metrics`).
  `preprocessor/` beside it is the keras-hub preprocessor preset that feeds it.
- `saved_model/`: a TensorFlow SavedModel whose `serving_default` signature takes
  `texts` (string, shape [batch]) and returns `probabilities` (float32 [batch, labels]),
  `decisions` (int32 0/1 at the run's tuned thresholds, baked in) and `logits`; an
  intensity run's (Track B) returns `scores` (the continuous intensity) and
  `intensities` (int32 0..K at its cut points; `kemo.serving.intensity_graph`).
  Batch size and sequence length are dynamic: each batch is tokenised, cut to the
  run's sequence length and padded to the smallest of the run's length buckets that
  holds its longest text (as `Run.predict_probs` pads), its rows repeated up to the
  next power of two: XLA compiles once per shape, and this keeps the shapes few (the
  first call with a new shape takes a second or two on CPU). It needs only TensorFlow
  and the tensorflow-text ops (no Keras, keras-hub or JAX code runs):
      import tensorflow as tf, tensorflow_text  # the import registers the tf-text ops
      m = tf.saved_model.load("DIR/saved_model")
      out = m.signatures["serving_default"](texts=tf.constant(["I love it"]))
- `export.json`: label names, thresholds, preprocessing settings, versions and the
  timings printed by the command (`read_export_info` reads it back, validated).
- `.kemo-export`: marks DIR as kemo's export and lists every entry kemo wrote. An
  existing DIR is replaced only when it holds this marker and nothing else than the
  entries it lists; any other non-empty DIR is refused, and nothing in it is deleted.

How the SavedModel is built (two stages; a single Keras `ExportArchive` endpoint
cannot take strings under JAX): (1) `model.export(format="tf_saved_model")` of the
numeric model with shape-polymorphic inputs `(b, s)`, `s <= sequence_length`
(jax2tf, lowered for CPU and CUDA; the defaults fail on keras-hub position embeddings);
(2) a `tf.Module` that runs the keras-hub preprocessor as TensorFlow ops, calls the
reloaded numeric model, applies the sigmoid and the thresholds, saved with
`tf.saved_model.save`. Under the TensorFlow backend (`--backend tensorflow`) stage (1)
is a plain TensorFlow graph and the rest is the same. The torch backend cannot write
a SavedModel (Keras needs torch_xla for it) and is refused in one line; model.keras
does not depend on the backend, so a run trained under torch exports under jax.

Latencies are measured in a TensorFlow-only subprocess (`kemo.serving.tf_only`).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from kemo.data.pipeline import length_buckets
from kemo.errors import InputError
from kemo.run import layout as L
from kemo.run.report_file import Setting
from kemo.serving.graph import LanguageRouting, ServingMember, build_serving_module
from kemo.serving.intensity_graph import build_intensity_module
from kemo.serving.tf_only import benchmark_saved_model
from kemo.serving.export_dir import (  # noqa: F401  (read_export_info: re-exported)
    FORMAT_VERSION, LANGUAGE_SIGNATURE, SAVED_MODEL, SIGNATURE, check_out, mark, read_export_info, replace,
    staging_dir,
)

log = logging.getLogger(__name__)


def dir_size(path) -> int:
    """Bytes of all files under `path`."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _model_input_specs(model) -> dict:
    import tensorflow as tf

    inputs = model.input
    if not isinstance(inputs, dict):
        raise InputError("export needs a model with the dict inputs of a keras-hub text "
                         f"backbone (token_ids, padding_mask, ...), not {inputs!r}")
    return {name: tf.TensorSpec((None, None), tf.as_dtype(t.dtype), name=name)
            for name, t in inputs.items()}


EXPORT_BACKENDS = ("jax", "tensorflow")


def check_export_backend(backend: str) -> None:
    """Refuse a backend that cannot write the SavedModel (torch: Keras needs torch_xla).

    A run's model.keras does not depend on the backend it was trained under, so a run
    trained with `--backend torch` exports with `--backend jax`.

    Example:
        check_export_backend(keras.backend.backend())  # InputError under torch
    """
    if backend not in EXPORT_BACKENDS:
        raise InputError(f"kemo export: the SavedModel export needs the jax or tensorflow "
                         f"backend, not {backend!r}; model.keras does not depend on the "
                         f"backend, so export this run with --backend jax")


def export_numeric(model, path, sequence_length: int, platforms=("cpu", "cuda")) -> tuple:
    """SavedModel of `model` on dict int inputs (batch, seq<=sequence_length) -> logits.

    Returns (input specs, platforms actually lowered for: None outside JAX).
    """
    import keras

    specs = _model_input_specs(model)
    backend = keras.backend.backend()
    kwargs = dict(format="tf_saved_model", verbose=False, input_signature=[specs])
    if backend == "tensorflow":
        model.export(str(path), **kwargs)
        return specs, None
    if backend != "jax":
        check_export_backend(backend)
    jax2tf = {"polymorphic_shapes": [{name: "(b, s)" for name in specs}],
              "polymorphic_constraints": (f"s <= {int(sequence_length)}",),
              "with_gradient": False}
    try:
        model.export(str(path), **kwargs,
                     jax2tf_kwargs={**jax2tf, "native_serialization_platforms": tuple(platforms)})
        return specs, list(platforms)
    except Exception:
        if tuple(platforms) == ("cpu",):
            raise
        shutil.rmtree(path, ignore_errors=True)
    model.export(str(path), **kwargs,
                 jax2tf_kwargs={**jax2tf, "native_serialization_platforms": ("cpu",)})
    return specs, ["cpu"]


def _versions() -> dict:
    from importlib import metadata

    out = {}
    for dist, key in [("kemo", "kemo"), ("keras", "keras"), ("keras-hub", "keras_hub"),
                      ("tensorflow", "tensorflow"), ("tensorflow-text", "tensorflow_text"),
                      ("jax", "jax")]:
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    return out


def preprocessing_settings(preprocessor, sequence_length: int) -> dict:
    """What the SavedModel does to a text before the model sees it."""
    import keras_hub

    from kemo.models.vocab_prune import PrunedTokenizer

    tok = pruned = preprocessor.tokenizer
    if isinstance(tok, PrunedTokenizer):  # segments as the tokenizer it wraps
        tok = tok.tokenizer
    kinds = [("wordpiece", keras_hub.tokenizers.WordPieceTokenizer),
             ("sentencepiece", keras_hub.tokenizers.SentencePieceTokenizer),
             ("byte_pair", keras_hub.tokenizers.BytePairTokenizer)]
    kind = next((k for k, cls in kinds if isinstance(tok, cls)), "other")
    try:
        vocab = int(tok.vocabulary_size())
    except Exception:
        vocab = None
    return {
        "sequence_length": int(sequence_length),
        "truncation": "texts longer than sequence_length tokens (special tokens included) "
                      "are cut to sequence_length",
        "preprocessor": type(preprocessor).__name__,
        "tokenizer": type(tok).__name__,
        "tokenizer_kind": kind,
        "lowercase": getattr(tok, "lowercase", None),
        "strip_accents": getattr(tok, "strip_accents", None),
        "vocabulary_size": vocab,
        "truncate": getattr(preprocessor, "truncate", None),
        **({"pruned_vocabulary": {
            "kept_ids": pruned.vocabulary_size(),
            "rule": "id = position of the tokenizer's id among the kept ids; a piece "
                    "outside them becomes the unknown token"}}
           if pruned is not tok else {}),
    }


def use_snippet(saved_model) -> list[str]:
    """The lines that serve the export with TensorFlow alone (README, export.json) and
    print each label's name, probability and 0/1 decision (the names are the SavedModel's
    own `label_names`); `import tensorflow_text` registers the tokenizer's ops, without
    it the load fails with "Op type not registered 'RegexSplitWithOffsets'"."""
    return ["import tensorflow as tf",
            "import tensorflow_text  # registers the tokenizer's ops: import before loading",
            f"model = tf.saved_model.load({str(saved_model)!r})",
            "out = model.signatures[\"serving_default\"](texts=tf.constant([\"I can't stop "
            "smiling today\"]))",
            "labels = [name.decode() for name in model.label_names.numpy()]  # the run's",
            "for name, p, d in zip(labels, out[\"probabilities\"].numpy()[0], "
            "out[\"decisions\"].numpy()[0]):",
            "    print(f\"{name:10} {p:.3f} {d}\")  # label, probability, 0/1 decision"]


def export_run(run_dir, out_dir=None, *, benchmark: bool = True, batch_size: int = 32,
               repeats: int = 10, platforms=("cpu", "cuda"), pad_batch: bool = True) -> dict:
    """Export `run_dir` (see the module docstring); returns what export.json holds.
    Progress and timings go to the `kemo.serving.export` logger."""
    import keras

    check_export_backend(keras.backend.backend())  # before anything is read or written
    from kemo.prediction.predictor import load_predictor

    started = time.perf_counter()
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / L.EXPORT_DIR
    check_out(out)
    run = load_predictor(run_dir)
    stage = staging_dir(out)
    try:
        built = _build_saved_model(run, stage, platforms, pad_batch)
        info = export_info(run, out, stage, built, time.perf_counter() - started)
        (stage / "export.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        mark(stage)
        replace(out, stage)
    except BaseException as e:
        shutil.rmtree(stage, ignore_errors=True)
        if isinstance(e, KeyboardInterrupt):
            log.warning(f"interrupted: export directory {out}: "
                        + ("the earlier export is kept as it was" if out.exists()
                           else "not written") + "; nothing partial is left")
        raise
    size_mb = info["saved_model"]["size_bytes"] / 1e6
    lowered_for = info["saved_model"]["lowered_for"]
    log.info(f"exported {run_dir} -> {out} in {info['export_seconds']:.1f}s")
    log.info(f"SavedModel {out / SAVED_MODEL}: {size_mb:.2f} MB on disk "
             f"({'jax2tf, lowered for ' + ', '.join(lowered_for) if lowered_for else 'TensorFlow graph'})")
    if benchmark:
        _add_latency(info, out, batch_size, repeats)
    return info


@dataclass
class _Built:
    """What stage 1 and 2 left in the staging directory."""

    members: list  # the runs inside (one, or an ensemble's members)
    files: list  # each member's model.keras, relative to the export
    buckets: list  # each member's padded lengths
    lowered_for: list | None  # platforms every member's numeric model was lowered for
    pad_batch: bool  # rows repeated up to the next power of two
    languages: list | None = None  # the languages `serve_languages` knows (None: no such signature)


def language_routing(run, members, weights) -> LanguageRouting | None:
    """How a text of each language is served
    (`kemo.prediction.ensemble_run.serving_weights`, the run's per-language thresholds),
    for the SavedModel's `serve_languages`; None when the language changes nothing (one
    run without per-language thresholds)."""
    import numpy as np

    from kemo.prediction.ensemble_run import member_languages, serving_weights

    per_language = dict(getattr(run.thresholds, "per_language", None) or {})
    if len(members) == 1 and not per_language:
        return None
    langs = list(dict.fromkeys([*(lang for m in members for lang in member_languages(m)),
                                *per_language]))
    w = serving_weights(members, weights, run.label_names, [*langs, None],
                        serve=getattr(run, "serve", "average"))
    glob = [float(t) for t in run.thresholds.thresholds]
    thr = np.array([per_language.get(lang, glob) for lang in langs] + [glob], "float32")
    return LanguageRouting(langs, w.astype("float32"), thr)


def _build_saved_model(run, stage: Path, platforms, pad_batch: bool) -> _Built:
    """Copy each member's model and preprocessor into `stage`, export its numeric model
    (stage 1), then save the raw-text serving module (stage 2) as `saved_model/`."""
    import tensorflow as tf

    members = getattr(run, "members", None) or [run]  # an ensemble's, or the run itself
    weights = getattr(run, "weights", None) or [1.0]
    serving, lowered_for, files = [], None, []
    for i, member in enumerate(members):
        # A run's files at the top; an ensemble's members under members/<i>/.
        where = stage / "members" / str(i) if len(members) > 1 else stage
        where.mkdir(parents=True, exist_ok=True)
        shutil.copy2(member.path / L.MODEL, where / L.MODEL)
        shutil.copytree(member.path / L.PREPROCESSOR, where / L.PREPROCESSOR)
        files.append(str((where / L.MODEL).relative_to(stage)))
        seq_len = int(member.config.model.sequence_length)
        specs, lowered = export_numeric(member.model, stage / f"_numeric{i}", seq_len,
                                        platforms)
        lowered_for = lowered if lowered_for is None else \
            [p for p in lowered_for if p in (lowered or [])]
        serving.append(ServingMember(
            tf.saved_model.load(str(stage / f"_numeric{i}")), member.preprocessor, specs,
            length_buckets(member.config.data.length_buckets, seq_len),
            list(member.label_names)))
    if getattr(run, "intensity", False):  # Track B: scores and integer intensities
        routing = None
        module = build_intensity_module(serving[0], run.thresholds.cuts, run.label_names,
                                        pad_batch)
    else:
        routing = language_routing(run, members, weights)
        module = build_serving_module(serving, weights,
                                      [float(t) for t in run.thresholds.thresholds],
                                      run.label_names, pad_batch, routing)
    signatures = {SIGNATURE: module.serve}
    if routing is not None:
        signatures[LANGUAGE_SIGNATURE] = module.serve_languages
    tf.saved_model.save(module, str(stage / SAVED_MODEL), signatures=signatures,
                        options=tf.saved_model.SaveOptions(experimental_custom_gradients=False))
    buckets = [m.buckets for m in serving]
    del module, serving
    for i in range(len(members)):
        shutil.rmtree(stage / f"_numeric{i}")
    return _Built(members, files, buckets, lowered_for, pad_batch,
                  routing.languages if routing is not None else None)


def export_info(run, out: Path, stage: Path, built: _Built, export_s: float) -> dict:
    """export.json: what the export holds and how to use it."""
    import keras

    members, files = built.members, built.files
    several = len(members) > 1
    seq_len = int(run.config.model.sequence_length) if not several else None
    return {
        "format_version": FORMAT_VERSION,
        "run_dir": str(run.path.resolve()),
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "backend": keras.backend.backend(),
        "label_names": run.label_names,
        **_decision_info(run),
        "preprocessing": [preprocessing_settings(m.preprocessor, m.config.model.sequence_length)
                          for m in members]
        if several else preprocessing_settings(run.preprocessor, seq_len),
        "keras_model": {"path": "members" if several else files[0],
                        **({"members": files} if several else {}),
                        "preprocessor": "preprocessor beside each model.keras",
                        "outputs": _keras_outputs(run),
                        "load": "import kemo.prediction.trained_run; keras.models.load_model(path, "
                                "compile=False, safe_mode=True)"},
        **({"ensemble": _ensemble_info(run)} if several else {}),
        "saved_model": _saved_model_info(out, stage, built, several)
        | ({"outputs": INTENSITY_OUTPUTS, "python": intensity_snippet(out / SAVED_MODEL)}
           if getattr(run, "intensity", False) else {}),
        "versions": _versions(),
        "export_seconds": round(export_s, 3),
    }


INTENSITY_OUTPUTS = {"scores": "float32 [batch, num_labels]: the continuous intensity 0..K",
                     "intensities": "int32 [batch, num_labels]: 0..K at the cut points"}


def _decision_info(run) -> dict:
    """How the export decides: thresholds (a binary run), or an intensity run's label
    kind, K and cut points."""
    if getattr(run, "intensity", False):
        cuts = run.thresholds
        return {"label_kind": "intensity", "max_intensity": int(cuts.max_intensity),
                "cut_points": {n: [float(c) for c in row]
                               for n, row in zip(run.label_names, cuts.cuts)},
                "decision_rule": "intensity = how many of the label's cut points the score "
                                 "reaches (score >= cut, float64)"}
    return {"label_kind": "binary",
            "thresholds": [float(t) for t in run.thresholds.thresholds],
            "decision_rule": "decision = probability >= threshold (float32)",
            **_per_language_info(run)}


def intensity_snippet(saved_model) -> list[str]:
    """`use_snippet` for an intensity export: each label's intensity and score."""
    lines = use_snippet(saved_model)[:5]
    return lines + ["for name, i, s in zip(labels, out[\"intensities\"].numpy()[0], "
                    "out[\"scores\"].numpy()[0]):",
                    "    print(f\"{name:10} {i} ({s:.2f})\")  # label, intensity 0..K, score"]


def _keras_outputs(run) -> str:
    if not getattr(run, "intensity", False):
        return "logits; probability = sigmoid(logits)"
    if run.config.model.head == "ordinal":
        return ("cumulative logits [batch, labels, K]: score = sum over k of "
                "sigmoid(logit_k), P(y > k)")
    return "the continuous intensity [batch, labels], K * sigmoid"


def _per_language_info(run) -> dict:
    """A raw-text SavedModel does not know a text's language: its `decisions` use the
    global `thresholds`; a per-language run's own sets are kept for callers."""
    per_language = getattr(run.thresholds, "per_language", None)
    if not per_language:
        return {}
    return {Setting.PER_LANGUAGE.value: {k: [float(x) for x in v]
                                        for k, v in per_language.items()},
            "per_language_rule": "serving_default's decisions use `thresholds`; the "
                                 f"{LANGUAGE_SIGNATURE} signature (texts, languages) decides "
                                 "a text of one of these languages at "
                                 "per_language_thresholds[language]"}


def _ensemble_info(run) -> dict:
    from kemo.data.dataset import trained_languages

    members = run.members
    return {
        "weights": run.weights,
        "member_labels": [list(m.label_names) for m in members],
        "member_languages": [list(trained_languages(m.config) or []) for m in members],
        "rule": "probability of a label = sum over the members predicting it of "
                "weight * sigmoid(member logit), weights renormalised over them",
        "serve": getattr(run, "serve", "average"),
        "language_rule": "serving_default does not know a text's language: it averages "
                         "every member (as `kemo predict --text` does); the "
                         f"{LANGUAGE_SIGNATURE} signature (texts, languages), like kemo "
                         "predict on files of a language, averages for a text of language "
                         "L only the members whose member_languages hold L (serve "
                         "'specialist': of those, the ones trained on the fewest "
                         "languages; all members if none holds L)"}


def _saved_model_info(out: Path, stage: Path, built: _Built, several: bool) -> dict:
    buckets = built.buckets
    return {
        "path": SAVED_MODEL,
        "signature": SIGNATURE,
        "inputs": {"texts": "string [batch]"},
        "outputs": {"probabilities": "float32 [batch, num_labels]",
                    "decisions": "int32 [batch, num_labels] (0/1)",
                    "logits": "float32 [batch, num_labels]"},
        **({"language_signature": {
            "name": LANGUAGE_SIGNATURE,
            "inputs": {"texts": "string [batch]",
                       "languages": "string [batch]: each text's language code"},
            "outputs": {"probabilities": "float32 [batch, num_labels]",
                        "decisions": "int32 [batch, num_labels] (0/1)"},
            "languages": built.languages,
            "other_languages": "a code not listed (or '') is served as serving_default "
                               "serves every text"}} if built.languages else {}),
        "max_sequence_length": max(b[-1] for b in buckets),
        "padded_lengths": buckets if several else buckets[0],
        "batch_padding": "rows repeated up to the next power of two" if built.pad_batch
                         else None,
        "compilation": "XLA compiles the model once per (padded batch, padded length) on "
                       "its first use; that call is slow (the cold latency), later ones "
                       "with the same shape are not",
        "lowered_for": built.lowered_for,
        "requires": "tensorflow and the tensorflow-text ops "
                    "(import tensorflow_text before tf.saved_model.load)",
        "python": use_snippet(out / SAVED_MODEL),
        "size_bytes": dir_size(stage / SAVED_MODEL),
    }


def _add_latency(info: dict, out: Path, batch_size: int, repeats: int) -> None:
    """Measure the SavedModel in a fresh TensorFlow-only process; into export.json."""
    bench = benchmark_saved_model(out / SAVED_MODEL, batch_size, repeats)
    info["latency"] = {k: bench[k] for k in ("load_s", "cold_s", "warm_median_s",
                                             "warm_min_s", "batch_size", "repeats")}
    info["latency"]["process"] = "fresh subprocess: tensorflow + tensorflow-text ops only"
    log.info(f"latency, batch of {bench['batch_size']} texts (fresh TensorFlow-only process): "
             f"load {bench['load_s']:.2f}s, cold {bench['cold_s'] * 1e3:.0f} ms, "
             f"warm median {bench['warm_median_s'] * 1e3:.1f} ms of {bench['repeats']}")
    (out / "export.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
