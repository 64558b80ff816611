"""User-facing errors: one clear message, a non-zero exit, no traceback."""
from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


class HwnasError(Exception):
    """A mistake the user can fix (bad config, missing data, malformed input).

    The message says what is wrong and what to do; entry points print it without a
    traceback and exit with status 2.
    """


class DataError(HwnasError):
    """A data file is missing, corrupt or inconsistent."""


class ConfigError(HwnasError):
    """A configuration value is invalid."""


class BudgetExhausted(HwnasError):
    """An evaluator was asked for more accuracy queries than the budget allows."""


def exit_on_user_error(fn: F) -> F:
    """Wrap an entry point: print HwnasError messages cleanly and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HwnasError as exc:
            print(f"hwnas: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]
