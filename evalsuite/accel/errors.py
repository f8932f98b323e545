"""The exceptions of the axes library."""

from __future__ import annotations

from evalsuite.errors import EvalsuiteError, UsageError


class PointError(UsageError, ValueError):
    """An axis point or memory strategy that cannot be parsed (unknown axis or value); the message
    names the point and the accepted values."""


class Unavailable(EvalsuiteError, RuntimeError):
    """An axis (or memory strategy) cannot run here; the message is the reason (package missing,
    needs CUDA, not supported by this model...). Scenarios record it as ``unavailable: <reason>``."""
