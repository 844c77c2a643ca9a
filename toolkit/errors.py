"""One exception family. Messages are one line: what is wrong and what to do.

The CLI prints ``edgekit: error: <message>`` without a traceback (unless ``--debug``)
and exits with ``exit_code``.
"""


class EdgekitError(Exception):
    """Base class of every error edgekit raises on purpose."""

    exit_code = 2


class UsageError(EdgekitError):
    """A parameter or option is invalid."""


class DataError(EdgekitError):
    """A dataset path, file or image cannot be used."""


class ModelError(EdgekitError):
    """A model file or model name cannot be used."""


class ExportError(EdgekitError):
    """A conversion to an edge format failed."""


class BackendError(EdgekitError):
    """A runtime backend cannot load or run an artifact as asked."""


class GateFailed(EdgekitError):
    """A parity or accuracy gate failed: the export does not answer like its reference."""

    exit_code = 1


def first_line(e: BaseException, limit: int = 300) -> str:
    """The first non-blank line of ``e``'s message (its type name when empty), cut at ``limit``.

    Library exceptions carry multi-line messages, and some carry none; edgekit's errors
    quote them in one line.

    Example:
        >>> first_line(ValueError("bad shape\\n  at layer 3"))
        'bad shape'
        >>> first_line(ValueError())
        'ValueError'
    """
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:limit]
