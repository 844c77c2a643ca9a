"""Verify an artifact before a native loader sees it.

LiteRT and ONNX Runtime are C++ underneath; a malformed file should be refused here
with a clear message rather than reach them. Checks, cheapest first: the file exists
and is not empty, its size and sha256 match the manifest written at export time, and
its leading bytes are those of its format.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from export.manifest import Manifest, sha256_file
from toolkit.errors import BackendError

# The first byte of a serialized ModelProto is the tag of one of its fields
# (ir_version, producer_*, domain, model_version, doc_string, graph, opset_import,
# metadata_props, training_info, functions).
_ONNX_FIRST_TAGS = frozenset((0x08, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA))
_MAGIC = {".tflite": (4, b"TFL3"), ".h5": (0, b"\x89HDF\r\n\x1a\n"), ".hdf5": (0, b"\x89HDF\r\n\x1a\n")}


def check_magic(path: Path) -> None:
    """Raise BackendError when ``path`` does not start like a file of its suffix."""
    suffix = path.suffix.lower()
    with open(path, "rb") as fh:
        head = fh.read(16)
    if suffix in _MAGIC:
        offset, magic = _MAGIC[suffix]
        if head[offset:offset + len(magic)] != magic:
            raise BackendError(f"{path.name} is not a valid {suffix} file (bad header); "
                               "re-export it or check the download.")
    elif suffix == ".keras" and not zipfile.is_zipfile(path):
        raise BackendError(f"{path.name} is not a valid .keras archive (not a zip); re-export it.")
    elif suffix == ".onnx" and (not head or head[0] not in _ONNX_FIRST_TAGS):
        raise BackendError(f"{path.name} is not a valid ONNX protobuf (bad header); re-export it.")


def verify_artifact(path: str | Path, manifest: Manifest | None = None) -> None:
    """Refuse a missing, empty, truncated, altered or mislabelled artifact file.

    Args:
        path: the artifact (a file; folders such as SavedModels are hashed whole).
        manifest: its manifest; its ``size_bytes`` and ``sha256`` are checked when set.

    Raises:
        BackendError: with what is wrong and what to do.

    Example:
        >>> verify_artifact("models/m.tflite", find_manifest("models/m.tflite"))  # doctest: +SKIP
    """
    p = Path(path)
    if not p.exists():
        raise BackendError(f"Artifact not found: {p}")
    if p.is_file():
        size = p.stat().st_size
        if size == 0:
            raise BackendError(f"{p.name} is empty (0 bytes); re-export it.")
        if manifest is not None and manifest.size_bytes is not None and size != manifest.size_bytes:
            raise BackendError(f"{p.name} has {size} bytes but its manifest says "
                               f"{manifest.size_bytes}: truncated or replaced; re-export it.")
        check_magic(p)
    if manifest is not None and manifest.sha256 and sha256_file(p) != manifest.sha256:
        raise BackendError(f"{p.name} does not match its manifest's sha256 (changed since export); "
                           "re-export it, or delete the stale manifest to skip the check.")
