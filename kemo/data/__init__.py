"""Data: BRIGHTER Track A CSVs (`brighter`) and the tf.data input pipeline (`pipeline`)."""

from kemo.data.brighter import LABELS, LANGUAGES, Examples, load_split, resolve_data_dir

__all__ = ["LABELS", "LANGUAGES", "Examples", "load_split", "resolve_data_dir"]
