"""One exception family. Messages are one line: what is wrong and what to do.

The CLI prints ``edgeproof: error: <message>`` without a traceback (unless ``--debug``)
and exits with ``exit_code``: 1 for a gate that fails (``GateFailed``), 4 for one that
cannot decide (``GateUndecided``), 2 for every other error; 3 is an internal error (a
bug), 130 an interrupt.
"""

import re


class EdgeproofError(Exception):
    """Base class of every error edgeproof raises on purpose."""

    exit_code = 2


class UsageError(EdgeproofError):
    """A parameter or option is invalid."""


class DataError(EdgeproofError):
    """A dataset path, file or image cannot be used."""


class ModelError(EdgeproofError):
    """A model file or model name cannot be used."""


class ExportError(EdgeproofError):
    """A conversion to an edge format failed."""


class RuntimeFailure(EdgeproofError):
    """A runtime cannot load or run an artifact as asked (or not on the device asked for)."""


class WorkerDied(RuntimeFailure):
    """A spawned worker process died (a crash in native code), not an error raised in it.

    Callers that sandbox a load tell the two apart by this type: a crash means the file is
    malformed or hostile, a raised error is the runtime's own refusal.

    Example:
        >>> isinstance(WorkerDied("The benchmark worker process died"), RuntimeFailure)
        True
    """


class GateFailed(EdgeproofError):
    """A parity or accuracy gate failed: the export does not answer like its reference."""

    exit_code = 1


class GateUndecided(EdgeproofError):
    """The gate could not decide: on these images the export's confidence interval
    straddles a limit (or the images are too few to prove it at all). More images, or
    a lower ``--confidence``, decide it. Its own exit code, so a script can tell
    "not proven" from "proven to fail"."""

    exit_code = 4


def first_line(e: BaseException, limit: int = 300) -> str:
    """The first non-blank line of ``e``'s message (its type name when empty), cut at ``limit``.

    Library exceptions carry multi-line messages, and some carry none; edgeproof's errors
    quote them in one line.

    Example:
        >>> first_line(ValueError("bad shape\\n  at layer 3"))
        'bad shape'
        >>> first_line(ValueError())
        'ValueError'
    """
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # libraries colour their messages (torch)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:limit]
