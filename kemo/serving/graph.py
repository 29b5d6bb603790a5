"""The raw-text serving graph of an export: strings in, probabilities and decisions out.

`build_serving_module(members, weights, thresholds, label_names)` returns a `tf.Module`
whose `serve(texts)` runs, for each member (one for a run, several for an ensemble),
its keras-hub preprocessor as TensorFlow ops and its numeric SavedModel (stage 1 of
`kemo.serving.export`), then averages the members' sigmoid probabilities with `weights` and
applies the thresholds. Each member keeps its own tokenizer, sequence length and
length buckets.

Example:
    member = ServingMember(numeric, run.preprocessor, specs, buckets=[32, 64, 128])
    module = build_serving_module([member], [1.0], thresholds, run.label_names)
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServingMember:
    """One model inside the serving graph."""

    numeric: object  # the reloaded numeric SavedModel (`.serve(dict of int tensors)`)
    preprocessor: object  # the keras-hub preprocessor that feeds it
    input_specs: dict  # name -> tf.TensorSpec of the numeric model's inputs
    buckets: list[int]  # padded lengths; the last is the preprocessor's sequence length
    label_names: list[str] | None = None  # its outputs' labels (None: the module's)


@dataclass
class LanguageRouting:
    """What the `serve_languages` signature does per row: a row of language
    `languages[i]` is averaged with `weights[i]` (members, labels) and decided at
    `thresholds[i]` (labels); the last row of each serves any other language (and "").

    Example:
        LanguageRouting(["deu", "eng"], weights, thresholds)  # weights: (3, members, labels)
    """

    languages: list[str]
    weights: object  # float array (len(languages) + 1, members, labels)
    thresholds: object  # float array (len(languages) + 1, labels)


def _tf_trackables(layer) -> list:
    """TensorFlow objects (tf-text tokenizers and their resources, lookup tables) held by
    a keras-hub preprocessor and its sub-layers. Under JAX a Keras layer is not a TF
    trackable, so the serving module must hold these itself for them to be saved."""
    import keras
    import tensorflow as tf

    found, seen = [], set()

    def visit(obj):
        if id(obj) in seen:
            return
        seen.add(id(obj))
        for value in list(vars(obj).values()):
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(v, tf.__internal__.tracking.Trackable):
                    if id(v) not in seen:
                        seen.add(id(v))
                        found.append(v)
                elif isinstance(v, keras.layers.Layer):
                    visit(v)

    visit(layer)
    return found


def _member_logits(member: ServingMember, texts, pad_batch: bool):
    """One member's float32 logits for `texts` (a non-empty string batch).

    The preprocessor pads/truncates to `buckets[-1]` tokens; the batch is then cut to
    the smallest bucket that holds its longest text (as `Run.predict_probs` pads) and,
    with `pad_batch`, its rows are repeated up to the next power of two (dropped from
    the outputs): XLA compiles once per input shape, so this keeps the shapes few.
    """
    import tensorflow as tf

    bucket_sizes = tf.constant(member.buckets, tf.int32)
    x = member.preprocessor(texts)
    if isinstance(x, tuple):
        x = x[0]
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(x["padding_mask"], tf.int32), axis=1))
    length = bucket_sizes[tf.argmax(tf.cast(bucket_sizes >= longest, tf.int32))]
    n = tf.shape(texts)[0]
    rows = tf.range(n)
    if pad_batch:
        padded = tf.while_loop(lambda p: p < n, lambda p: p * 2, [tf.constant(1)])[0]
        rows = tf.range(padded) % n
    feed = {}
    for name, spec in member.input_specs.items():
        value = x.get(name)
        if value is None and name == "segment_ids":
            value = tf.zeros_like(x["token_ids"])
        if value is None:
            raise ValueError(f"the preprocessor gives no {name!r} input")
        feed[name] = tf.gather(tf.cast(value[:, :length], spec.dtype), rows)
    return tf.cast(member.numeric.serve(feed), tf.float32)[:n]


def label_weights(members, weights, label_names):
    """(members, labels) averaging weights: each label's mean is over the members that
    predict it (a member's `label_names`; None: all), weights renormalised per label."""
    import numpy as np

    has = np.array([[m.label_names is None or n in m.label_names for n in label_names]
                    for m in members], "float64")
    w = np.asarray(weights, "float64")[:, None] * has
    return w / w.sum(axis=0, keepdims=True)


def _hold_routing(module, routing: LanguageRouting) -> None:
    """The language lookup table and the per-language weights and thresholds that
    `serve_languages` reads, held (and saved) by `module`."""
    import tensorflow as tf

    module.languages = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(routing.languages), tf.string),
                                            tf.range(len(routing.languages), dtype=tf.int64)),
        default_value=len(routing.languages))
    module.route_weights = tf.Variable(tf.constant(routing.weights, tf.float32),
                                       trainable=False, name="route_weights")
    module.route_thresholds = tf.Variable(tf.constant(routing.thresholds, tf.float32),
                                          trainable=False, name="route_thresholds")


def build_serving_module(members, weights, thresholds, label_names, pad_batch: bool = True,
                         routing: LanguageRouting | None = None):
    """A tf.Module whose `serve(texts)` maps raw strings to `probabilities` (the
    weighted mean of the members' sigmoids, per label over the members predicting it:
    `label_weights`), `decisions` (probability >= threshold) and `logits` (a single
    member's own logits; for an ensemble, the logit of the mean). With `routing`, also
    `serve_languages(texts, languages)`: each row averaged and decided as its
    language says (`LanguageRouting`), as `kemo predict` does for files of a language."""
    import tensorflow as tf

    num_labels = len(label_names)
    matrix = label_weights(members, weights, label_names)
    # Each member's sigmoids placed in the module's label columns (a zero where it has none).
    columns = [list(range(num_labels)) if m.label_names is None else
               [list(m.label_names).index(n) if n in m.label_names else len(m.label_names)
                for n in label_names] for m in members]

    class ServingModule(tf.Module):
        def __init__(self):
            super().__init__(name="kemo_serving")
            self.numeric = [m.numeric for m in members]
            self.tokenizer_resources = [_tf_trackables(m.preprocessor) for m in members]
            self.label_names = tf.Variable(list(label_names), dtype=tf.string,
                                           trainable=False, name="label_names")
            self.thresholds = tf.Variable(tf.constant(thresholds, tf.float32),
                                          trainable=False, name="thresholds")
            if routing is not None:
                _hold_routing(self, routing)

        def _sigmoids(self, texts):
            """Each member's sigmoids in the module's label columns (0 where it has none)."""
            return [tf.gather(tf.pad(tf.sigmoid(_member_logits(m, texts, pad_batch)),
                                     [[0, 0], [0, 1]]), c, axis=1)
                    for m, c in zip(members, columns)]

        def _outputs(self, texts):
            logits = [_member_logits(m, texts, pad_batch) for m in members]
            if len(logits) == 1:
                return logits[0], tf.sigmoid(logits[0])
            probs = tf.add_n([
                tf.constant(w, tf.float32)[None, :]
                * tf.gather(tf.pad(tf.sigmoid(z), [[0, 0], [0, 1]]), c, axis=1)
                for w, z, c in zip(matrix, logits, columns)])
            clipped = tf.clip_by_value(probs, 1e-7, 1.0 - 1e-7)
            return tf.math.log(clipped) - tf.math.log1p(-clipped), probs

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
        def serve(self, texts):
            empty = tf.zeros([0, num_labels], tf.float32)
            logits, probs = tf.cond(tf.size(texts) > 0, lambda: self._outputs(texts),
                                    lambda: (empty, empty))
            logits = tf.ensure_shape(logits, [None, num_labels])
            probs = tf.ensure_shape(probs, [None, num_labels])
            decisions = tf.cast(probs >= self.thresholds[None, :], tf.int32)
            return {"probabilities": probs, "decisions": decisions, "logits": logits}

        if routing is None:  # saving traces every tf.function the module holds
            serve_languages = None
        else:
            @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts"),
                                          tf.TensorSpec([None], tf.string, name="languages")])
            def serve_languages(self, texts, languages):
                index = self.languages.lookup(languages)
                weights = tf.gather(self.route_weights, index)  # (rows, members, labels)
                probs = tf.cond(
                    tf.size(texts) > 0,
                    lambda: tf.add_n([weights[:, k, :] * p
                                      for k, p in enumerate(self._sigmoids(texts))]),
                    lambda: tf.zeros([0, num_labels], tf.float32))
                probs = tf.ensure_shape(probs, [None, num_labels])
                decisions = tf.cast(probs >= tf.gather(self.route_thresholds, index), tf.int32)
                return {"probabilities": probs, "decisions": decisions}

    return ServingModule()
