"""An exported artifact (bytes or a folder of files, + manifest) and its atomic write to disk.

An artifact of two files (an OpenVINO IR: ``model.xml`` and its weights ``model.bin``) is
its main file plus ``companions`` written beside it with the same stem; the manifest's
``sha256`` is the main file's (what every runtime's check reads), and each companion's
sha256 and size are recorded in ``conversion["companion_files"]`` for the runtime that
reads them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from edgeproof.atomic import atomic_write_bytes, atomic_write_tree
from edgeproof.manifest import Manifest, manifest_path, sha256_bytes
from edgeproof.errors import ExportError


def sha256_tree(files: dict[str, bytes]) -> str:
    """sha256 of a folder given as ``{relative path: bytes}``; equals ``sha256_file(folder)``."""
    h = hashlib.sha256()
    for rel in sorted(Path(r) for r in files):
        h.update(files[rel.as_posix()])
    return h.hexdigest()


@dataclass
class Artifact:
    """The result of an exporter: the file's bytes (or a folder's files), suffix and manifest.

    Args:
        data: the file's bytes; ignored for a folder artifact.
        suffix: the file suffix (``""`` for folders).
        manifest: its manifest; ``sha256`` and ``size_bytes`` are filled in here.
        files: for a folder artifact (SavedModel), ``{relative posix path: bytes}``.
        companions: files written beside the main one, ``{suffix: bytes}`` (an IR's
            ``{".bin": weights}``).

    Example:
        >>> Artifact(b"abc", ".bin", manifest).manifest.size_bytes  # doctest: +SKIP
        3
    """

    data: bytes
    suffix: str
    manifest: Manifest
    files: dict[str, bytes] | None = None
    companions: dict[str, bytes] | None = None

    def __post_init__(self):
        if self.files is not None:
            self.manifest.sha256 = sha256_tree(self.files)
            self.manifest.size_bytes = sum(len(b) for b in self.files.values())
        else:
            self.manifest.sha256 = sha256_bytes(self.data)
            self.manifest.size_bytes = len(self.data)
        if self.companions:
            self.manifest.conversion["companion_files"] = {
                suffix: {"sha256": sha256_bytes(b), "size_bytes": len(b)}
                for suffix, b in self.companions.items()}


def write_artifact(artifact: Artifact, out_dir: str | Path, stem: str, force: bool = False) -> Path:
    """Write ``<out_dir>/<stem><suffix>`` (file or folder) and its manifest, both atomically.

    Companions (``<stem><companion suffix>``) are written first, each atomically, so the
    main file never names a companion that is not there yet.

    Args:
        artifact: what an exporter returned.
        out_dir: the output folder (created if missing).
        stem: the artifact's base name.
        force: overwrite an existing artifact.

    Raises:
        ExportError: the artifact exists and ``force`` is False, or the folder is not writable.

    Example:
        >>> write_artifact(export_model(model, "onnx-fp32", ctx), "out", "model-onnx-fp32")  # doctest: +SKIP
    """
    out_dir = Path(out_dir)
    path = out_dir / f"{stem}{artifact.suffix}"
    side = manifest_path(path)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if path.exists() and not force:
            raise ExportError(f"{path} already exists; pass --force to overwrite it.")
        for suffix, data in (artifact.companions or {}).items():
            atomic_write_bytes(out_dir / f"{stem}{suffix}", data)
        if artifact.files is not None:
            atomic_write_tree(path, artifact.files)
        else:
            atomic_write_bytes(path, artifact.data)
        atomic_write_bytes(side, artifact.manifest.to_json().encode())
    except ExportError:
        raise
    except OSError as e:
        raise ExportError(f"Cannot write {path}: {e.strerror or e}. Choose a writable --out "
                          "folder with free space.") from None
    return path
