"""The one exception of the axes library."""


class Unavailable(RuntimeError):
    """An axis (or memory strategy) cannot run here; the message is the reason (package missing,
    needs CUDA, not supported by this model...). Scenarios record it as ``unavailable: <reason>``."""
