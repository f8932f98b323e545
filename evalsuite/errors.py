"""The one error hierarchy of evalsuite (light: imports nothing).

Every exception evalsuite raises on purpose derives from :class:`EvalsuiteError`; the command line
(:func:`evalsuite.cli.main.main`) maps them to exit codes by class, never by a built-in base:

* :class:`UsageError` → exit 2: unusable input the user can fix (an unknown configuration, metric
  or dataset, an invalid manifest, override or option, a run directory this version cannot read).
  The message names the file or argument and the fix; no traceback.
* :class:`LockedError` → exit 3: the run directory is held by another live process.
* every other :class:`EvalsuiteError` (:class:`DataError`, :class:`WeightsError`,
  :class:`InternalError`) → exit 1, with the message; the traceback is logged at DEBUG (``-v``).
* any other exception is a bug → exit 1 with the traceback printed.

Classes that were ``ValueError``/``KeyError``/``FileNotFoundError`` before this hierarchy keep that
built-in as a second base, so Python callers that catch it are unaffected; the command line no
longer treats a bare built-in as a usage error.
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILED",
    "EXIT_LOCKED",
    "EXIT_USAGE",
    "DataError",
    "DiskFullError",
    "EvalsuiteError",
    "InternalError",
    "LockedError",
    "UsageError",
    "WeightsError",
    "exit_code_of",
]

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3


class EvalsuiteError(Exception):
    """Base of every error evalsuite raises on purpose. ``exit_code`` is what the command line
    returns for it (1 unless a subclass says otherwise)."""

    exit_code: int = EXIT_FAILED


class UsageError(EvalsuiteError):
    """Unusable input the user can fix (exit 2); the message says what and how."""

    exit_code = EXIT_USAGE


class LockedError(EvalsuiteError):
    """The run directory is in use by another live evalsuite process (exit 3)."""

    exit_code = EXIT_LOCKED


class DataError(EvalsuiteError):
    """Input data that is present but damaged in a way the run cannot work around (exit 1)."""


class WeightsError(EvalsuiteError):
    """Model or metric weights that cannot be found or loaded (exit 1); the message says how to get them."""


class DiskFullError(EvalsuiteError):
    """A write failed for lack of space (ENOSPC, or a quota: EDQUOT) (exit 1); the message names the
    folder, its file system's free space and about how much is needed, and says that what was written
    before is kept."""


class InternalError(EvalsuiteError):
    """An unexpected failure inside evalsuite (exit 1, traceback logged)."""


def exit_code_of(exc: BaseException) -> int:
    """The command line's exit code for ``exc`` (see the module docstring)."""
    return exc.exit_code if isinstance(exc, EvalsuiteError) else EXIT_FAILED
