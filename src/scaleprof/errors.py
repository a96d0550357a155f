"""The one exception type the CLI turns into a single line on stderr."""

from __future__ import annotations

import difflib


class ScaleprofError(Exception):
    """A problem with the user's input or environment, worded for the user.

    ``exit_code`` is 2 for bad input (unknown names, malformed values) and 1 for a
    failure of the environment (missing backend, unwritable directory, disk full).
    """

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


class BadInput(ScaleprofError):
    def __init__(self, message: str):
        super().__init__(message, exit_code=2)


class EnvironmentProblem(ScaleprofError):
    def __init__(self, message: str):
        super().__init__(message, exit_code=1)


def nearest(word: str, choices) -> str:
    """' (did you mean X?)' for the closest valid choice, or ''. Choices that differ from ``word`` only
    in case win over closer spellings, and all of them are named (dwR -> 'dwr' or 'dWr')."""
    names = [str(c) for c in choices]
    match = ([c for c in names if c.lower() == str(word).lower()]
             or difflib.get_close_matches(str(word), names, n=1, cutoff=0.5))
    return f" (did you mean {' or '.join(map(repr, match))}?)" if match else ""
