"""Serving a run outside kemo: `kemo export`.

- `kemo.serving.export`: the export of a run or ensemble (`model.keras`, a raw-text TF
  SavedModel, `export.json`).
- `kemo.serving.graph`: the SavedModel's serving graph (strings in, probabilities and
  decisions out).
- `kemo.serving.export_dir`: the export folder: staged, marked, replaced only when kemo
  wrote it.
- `kemo.serving.tf_only`: running a SavedModel in a TensorFlow-only process (latency).
"""
