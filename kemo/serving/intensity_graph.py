"""The raw-text serving graph of an intensity run (Track B): strings in, the continuous
intensity and the integer intensity 0..K per emotion out.

`build_intensity_module(member, cuts, label_names)` returns a `tf.Module` whose
`serve(texts)` runs the run's keras-hub preprocessor as TensorFlow ops and its numeric
SavedModel (`kemo.serving.graph._member_logits`: the same length buckets and batch
padding as a binary run's export), then turns the head's output into the continuous
intensity as `kemo.models.intensity_heads.intensity_scores` does (ordinal head: the sum
over k of sigmoid(logit_k); regression head: its output) and into integers with the
run's cut points as `kemo.prediction.cut_points.apply_cut_points` does (the number of a
label's cut points the score reaches, compared in float64).

Example:
    module = build_intensity_module(member, run.thresholds.cuts, run.label_names)
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    # serve(texts=...) -> {"scores": float32 [batch, labels], "intensities": int32 [batch, labels]}
"""

from __future__ import annotations

from kemo.serving.graph import ServingMember, _member_logits, _tf_trackables


def build_intensity_module(member: ServingMember, cuts, label_names, pad_batch: bool = True):
    """A tf.Module whose `serve(texts)` returns `scores` (the continuous intensity) and
    `intensities` (int32 0..K at the baked-in cut points, labels x K)."""
    import tensorflow as tf

    num_labels = len(label_names)

    class IntensityModule(tf.Module):
        def __init__(self):
            super().__init__(name="kemo_intensity_serving")
            self.numeric = member.numeric
            self.tokenizer_resources = _tf_trackables(member.preprocessor)
            self.label_names = tf.Variable(list(label_names), dtype=tf.string,
                                           trainable=False, name="label_names")
            self.cut_points = tf.Variable(tf.constant(cuts, tf.float64), trainable=False,
                                          name="cut_points")

        def _scores(self, texts):
            out = _member_logits(member, texts, pad_batch)
            return tf.reduce_sum(tf.sigmoid(out), axis=-1) if out.shape.rank == 3 else out

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
        def serve(self, texts):
            scores = tf.cond(tf.size(texts) > 0, lambda: self._scores(texts),
                             lambda: tf.zeros([0, num_labels], tf.float32))
            scores = tf.ensure_shape(scores, [None, num_labels])
            reached = tf.cast(scores, tf.float64)[:, :, None] >= self.cut_points[None, :, :]
            intensities = tf.reduce_sum(tf.cast(reached, tf.int32), axis=-1)
            return {"scores": scores, "intensities": intensities}

    return IntensityModule()
