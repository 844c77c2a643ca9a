"""An exported artifact (bytes + manifest) and its atomic write to disk."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from export.manifest import Manifest, manifest_path, sha256_bytes
from toolkit.errors import ExportError


@dataclass
class Artifact:
    """The result of an exporter: the file's bytes, its suffix and its manifest."""

    data: bytes
    suffix: str
    manifest: Manifest

    def __post_init__(self):
        self.manifest.sha256 = sha256_bytes(self.data)
        self.manifest.size_bytes = len(self.data)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    A crash or a full disk leaves either the old file or nothing: never half a file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_artifact(artifact: Artifact, out_dir: str | Path, stem: str, force: bool = False) -> Path:
    """Write ``<out_dir>/<stem><suffix>`` and its manifest ``<...>.json``, both atomically.

    Raises:
        ExportError: the file exists and ``force`` is False, or the folder is not writable.
    """
    out_dir = Path(out_dir)
    path = out_dir / f"{stem}{artifact.suffix}"
    side = manifest_path(path)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if path.exists() and not force:
            raise ExportError(f"{path} already exists; pass --force to overwrite it.")
        atomic_write_bytes(path, artifact.data)
        atomic_write_bytes(side, artifact.manifest.to_json().encode())
    except ExportError:
        raise
    except OSError as e:
        raise ExportError(f"Cannot write {path}: {e.strerror or e}. Choose a writable --out "
                          "folder with free space.") from None
    return path
