"""Data: a dataset as the config describes it (`dataset`: Track A's layout, `brighter`, or
any table, `table`, with label groups, `label_groups`), the rows as `examples.Examples`,
the train/validation split (`splits`) and the input pipeline (`pipeline`)."""

from kemo.data.brighter import LABELS, LANGUAGES, Examples, load_split, resolve_data_dir

__all__ = ["LABELS", "LANGUAGES", "Examples", "load_split", "resolve_data_dir"]
