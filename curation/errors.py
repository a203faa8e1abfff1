"""Error hierarchy: errors a user can act on carry a message naming the file, row or field.

`CurationError` and its subclasses are printed as one line by the `curate` entry point
(no traceback unless `--debug`); anything else is a bug and shows its traceback.
"""


class CurationError(Exception):
    """An error the user can fix; the message names the file, row, column or key."""


class ConfigError(CurationError):
    """A bad configuration value or key (raised before any Spark work starts)."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key '{key}': {message}")


class InputError(CurationError):
    """A bad input: a missing path, a missing/wrongly typed column, a corrupt file."""


class MissingResourceError(CurationError):
    """A resource the job needs is not installed (WordNet, a model checkpoint, ...)."""
