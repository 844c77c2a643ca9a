"""Files written whole or not at all: a temporary sibling, fsync, then a rename.

Every file edgeproof writes for a user (artifacts, manifests, reports, run records) goes
through here, so a crash, a full disk or ``kill -9`` leaves either the old file or
nothing: never half a file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edgeproof.errors import UsageError


def _new_sibling(path: Path, suffix: str, directory: bool = False) -> Path:
    """Create an empty ``.<name>.<random><suffix>`` file (or folder) beside ``path``.

    Unlike ``mkstemp``/``mkdtemp`` (0600/0700), it is created with the mode a plain
    ``open``/``mkdir`` gives (0666/0777 less the umask, applied by the kernel), so the
    renamed artifact is as readable as any other file the user writes.
    """
    import secrets

    while True:
        cand = path.parent / f".{path.name}.{secrets.token_hex(4)}{suffix}"
        try:
            if directory:
                os.mkdir(cand, 0o777)
            else:
                os.close(os.open(cand, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return cand
        except FileExistsError:
            continue


def _write_fsync(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


STALE_AFTER_S = 3600.0


def sweep_stale_temps(path: str | Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temporaries a killed writer of ``path`` left behind (``.<name>.*.tmp`` and
    ``.<name>.*.old`` siblings untouched for ``older_than_s``); returns what was removed.

    A live writer keeps touching its temporary, and a writer is never killed by this: only
    leftovers older than an hour go (a crash, ``kill -9``, a power cut mid-write).
    """
    import time

    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    now = time.time()
    for pattern in (f".{path.name}.*.tmp", f".{path.name}.*.old"):
        for cand in path.parent.glob(pattern):
            try:
                if now - cand.lstat().st_mtime < older_than_s:
                    continue
                if cand.is_dir() and not cand.is_symlink():
                    shutil.rmtree(cand)
                else:
                    cand.unlink()
                removed.append(cand)
            except OSError:
                continue  # gone already, or not ours to remove: leave it
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    A crash or a full disk leaves either the old file or nothing: never half a file.

    Example:
        >>> atomic_write_bytes("out/model.tflite", b"...")  # doctest: +SKIP
    """
    path = Path(path)
    tmp = _new_sibling(path, ".tmp")
    try:
        _write_fsync(tmp, data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    sweep_stale_temps(path)
    return path


def atomic_write_tree(path: str | Path, files: dict[str, bytes]) -> Path:
    """Write a folder atomically: fill a temporary sibling folder, then rename it into place.

    An existing folder at ``path`` is moved aside first and removed only after the new
    one is in place, so a failure leaves the old folder (or nothing) and no temporary.

    Example:
        >>> atomic_write_tree("out/model-saved_model", {"saved_model.pb": b"..."})  # doctest: +SKIP
    """
    path = Path(path)
    tmp = _new_sibling(path, ".tmp", directory=True)
    old = None
    try:
        for rel, data in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_fsync(target, data)
        if path.exists():
            old = _new_sibling(path, ".old", directory=True)
            os.replace(path, old / "x")
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old / "x", path)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    sweep_stale_temps(path)
    return path


def atomic_copy(src: str | Path, dst: str | Path) -> Path:
    """Copy a file (or a folder) to ``dst`` with the atomic writers: ``dst`` is the old
    copy or the whole new one, never half of it.

    Example:
        >>> atomic_copy("opt/candidates/m.tflite", "opt/models/m.tflite")  # doctest: +SKIP
    """
    src = Path(src)
    if src.is_dir():
        return atomic_write_tree(dst, {p.relative_to(src).as_posix(): p.read_bytes()
                                       for p in sorted(src.rglob("*")) if p.is_file()})
    return atomic_write_bytes(dst, src.read_bytes())


def ensure_writable_dir(path: str | Path, what: str = "--out") -> Path:
    """Create ``path`` if needed and prove it is writable, before any long work starts.

    Raises:
        UsageError: the folder cannot be created or written (what, where, and why).
    """
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".edgeproof-write-test.", dir=p)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UsageError(f"Cannot write to {what} {p}: {e.strerror or e}. Choose a writable "
                         "folder.") from None
    return p
