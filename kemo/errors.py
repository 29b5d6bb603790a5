"""The one error type a user sees: bad input, named precisely.

Every check on user input (config files, CSVs, presets, run directories) raises
`InputError` with a message that names the file, row and column (or config key) and
what was expected. The command line prints it on one line and exits with code 2.

Example:
    raise InputError("data/train/eng.csv, row 7 (id eng_1), column 'gratitude': "
                     "expected 0 or 1, got '2'")
"""


class InputError(ValueError):
    """Bad user input: a config key, a CSV cell, a preset path, a run directory."""
