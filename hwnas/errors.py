"""User-facing errors: one clear message, a non-zero exit, no traceback."""
from __future__ import annotations

import errno
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


# Write failures the user fixes outside hwnas (space, quota, permissions): one line, not a traceback.
STORAGE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exceeded",
                  errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied"}


def storage_message(exc: OSError) -> str:
    where = f" {exc.filename}" if exc.filename else ""
    return (f"cannot write{where}: {STORAGE_ERRNOS[exc.errno]}; free space or point the output elsewhere, "
            f"then run the same command again (files are written whole, so what was saved is intact; "
            f"a search continues with resume=true)")


def exit_on_user_error(fn: F) -> F:
    """Wrap an entry point: print HwnasError messages (and full-disk or permission errors)
    cleanly and exit 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except HwnasError as exc:
            print(f"hwnas: error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        except OSError as exc:
            if exc.errno not in STORAGE_ERRNOS:
                raise
            print(f"hwnas: error: {storage_message(exc)}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]
