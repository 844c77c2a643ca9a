"""Verify an artifact file against its manifest before a native loader sees it.

LiteRT and ONNX Runtime are C++ underneath; a malformed file should be refused here
with a clear message rather than reach them. Checks, cheapest first: the file exists
and is not empty, and its size and sha256 match the manifest written at export time.
Each runtime then checks the file's leading bytes (``Runtime.check_header``).
"""

from __future__ import annotations

from pathlib import Path

from edgeproof.errors import RuntimeFailure
from edgeproof.manifest import Manifest, sha256_file


def verify_artifact(path: str | Path, manifest: Manifest | None = None) -> None:
    """Refuse a missing, empty, truncated or altered artifact.

    Args:
        path: the artifact (a file; folders such as SavedModels are hashed whole).
        manifest: its manifest; its ``size_bytes`` and ``sha256`` are checked when set.

    Raises:
        RuntimeFailure: with what is wrong and what to do.

    Example:
        >>> verify_artifact("no/such/model.tflite")
        Traceback (most recent call last):
        ...
        edgeproof.errors.RuntimeFailure: Artifact not found: no/such/model.tflite
    """
    p = Path(path)
    if not p.exists():
        raise RuntimeFailure(f"Artifact not found: {p}")
    if p.is_file():
        size = p.stat().st_size
        if size == 0:
            raise RuntimeFailure(f"{p.name} is empty (0 bytes); re-export it.")
        if manifest is not None and manifest.size_bytes is not None and size != manifest.size_bytes:
            raise RuntimeFailure(f"{p.name} has {size} bytes but its manifest says "
                                 f"{manifest.size_bytes}: truncated or replaced; re-export it.")
    if manifest is not None and manifest.sha256 and sha256_file(p) != manifest.sha256:
        raise RuntimeFailure(f"{p.name} does not match its manifest's sha256 (changed since "
                             "export); re-export it, or delete the stale manifest to skip the check.")
