"""``edgeproof info FILE``: the reader of each kind of model file, in one table, and the step
every kind shares.

``READERS`` is the table: a kind, its label, which paths it takes (suffixes, or a test
for a folder), whether its loader is native code, and its function (``path ->
FileInfo``, in ``app.file_<kind>``). Adding a kind is one function and one row.

``inspect_file`` refuses a missing, empty or unknown file with one line, hashes the file,
finds the manifest (``<file>.json`` beside it, else the copy embedded in a ``.tflite`` /
``.onnx``) and checks its sha256, runs the reader, and adds the preprocessing (the
manifest's, else what the graph shows, saying which), class names and what was kept float
and why. A native loader (LiteRT, OpenVINO, PyTorch) reads a file no matching manifest
vouches for in a sandbox process (``bench.isolate``): a hostile file that crashes it
ends that process, and this one says so in a line.

Example:
    >>> info = inspect_file("exports/m-tflite-int8.tflite")  # doctest: +SKIP
    >>> info.integer_kind, info.preprocessing.source, info.manifest.sha256_matches  # doctest: +SKIP
    ('full-integer', 'manifest', True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeproof.app.file_info import ExpectedPreprocessing, FileInfo, KeptFloat, ManifestCheck
from edgeproof.app.file_keras import read_keras, read_saved_model
from edgeproof.app.file_onnx import read_onnx
from edgeproof.app.file_openvino import read_openvino
from edgeproof.app.file_tflite import read_tflite
from edgeproof.app.file_pte import read_pte
from edgeproof.app.file_torch import read_pt2, read_torchscript
from edgeproof.app.reporting import write_json
from edgeproof.bench.isolate import run_isolated
from edgeproof.embedded import read_embedded_manifest
from edgeproof.errors import EdgeproofError, ModelError, RuntimeFailure, UsageError, first_line
from edgeproof.manifest import Manifest, manifest_path, sha256_file
from edgeproof.reference import looks_like
from edgeproof.reference_torch import torch_file_kind
from edgeproof.registry import Registry


@dataclass(frozen=True)
class Reader:
    """One kind of model file: which paths it takes and the function that reads them.

    Args:
        kind: the name (``tflite``, ``onnx``, ...), ``FileInfo.kind``.
        label: what a user calls it, for messages.
        suffixes: file suffixes it takes (lower case).
        read: ``path -> FileInfo`` with the file's own facts.
        native: its loader is native code: untrusted files are read in a sandbox process.
        folder: a test for folder kinds (a SavedModel), else None.
        sniff: a test that tells this kind apart among readers sharing a suffix.
    """

    kind: str
    label: str
    suffixes: tuple[str, ...]
    read: Callable[[Path], FileInfo]
    native: bool = False
    folder: Callable[[Path], bool] | None = None
    sniff: Callable[[Path], bool] | None = None

    def takes(self, p: Path) -> bool:
        if p.is_dir():
            return self.folder is not None and self.folder(p)
        return p.suffix.lower() in self.suffixes and (self.sniff is None or self.sniff(p))


READERS: Registry[Reader] = Registry("file kind", "info")
for _row in (
    Reader("tflite", "TFLite flatbuffer", (".tflite",), read_tflite, native=True),
    Reader("onnx", "ONNX file", (".onnx",), read_onnx),
    Reader("keras", "Keras file", (".keras", ".h5", ".hdf5"), read_keras),
    Reader("saved_model", "SavedModel folder", (), read_saved_model,
           folder=lambda p: (p / "saved_model.pb").is_file()),
    Reader("pt2", "torch.export program", (".pt2",), read_pt2, native=True),
    Reader("torchscript", "TorchScript module", (".pt", ".pth", ".ts", ".torchscript", ".jit"),
           read_torchscript, native=True, sniff=lambda p: torch_file_kind(p) == "torchscript"),
    Reader("openvino", "OpenVINO IR", (".xml",), read_openvino, native=True),
    Reader("pte", "ExecuTorch program", (".pte",), read_pte, native=True),
):
    READERS.add(_row.kind, _row)


def reader_for(p: Path) -> Reader:
    """The reader that takes ``p``.

    Raises:
        ModelError: no kind takes it (the message says what it looks like and the kinds).

    Example:
        >>> reader_for(Path("m.onnx")).kind
        'onnx'
    """
    for row in READERS.rows():
        if row.takes(p):
            return row
    known = ", ".join(s for r in READERS.rows() for s in r.suffixes) + ", a SavedModel folder"
    raise ModelError(f"{p.name} is not a model file edgeproof info reads (it looks like "
                     f"{looks_like(p)}); it reads {known}.")


def read_kind(kind: str, path: str) -> FileInfo:
    """Run the reader ``kind`` on ``path``, every failure a one-line ModelError (module
    level: the sandbox process imports it by name).

    Example:
        >>> read_kind("pte", __file__)
        Traceback (most recent call last):
        ...
        edgeproof.errors.ModelError: file_kinds.py is not an ExecuTorch program (no ET identifier at byte 4): truncated, or another format with a .pte name.
    """
    row, p = READERS.get(kind), Path(path)
    try:
        return row.read(p)
    except ModelError:
        raise
    except EdgeproofError as e:
        raise ModelError(str(e)) from None
    except ImportError as e:
        raise ModelError(f"Reading a {row.label} needs {e.name or 'a library'}, which is not "
                         "installed (see README, Install).") from None
    except Exception as e:  # a parser's own error on a malformed file: one line
        raise ModelError(f"{p.name} is not a readable {row.label} ({type(e).__name__}: "
                         f"{first_line(e, 150)}): truncated, or another format.") from None


def _read(row: Reader, p: Path, sandbox: bool) -> FileInfo:
    if not sandbox:
        return read_kind(row.kind, str(p))
    try:
        return run_isolated(read_kind, row.kind, str(p))
    except RuntimeFailure:  # read_kind raises ModelError only: the worker died (WorkerDied)
        raise ModelError(f"The {row.label} loader crashed reading {p.name} in a sandbox process: "
                         "the file is malformed (or hostile); nothing else was affected.") \
            from None


def find_manifest_checked(p: Path, sha256: str) -> tuple[Manifest | None, ManifestCheck]:
    """The manifest of ``p`` (sidecar, else embedded) and what it says about the file.

    Example:
        >>> find_manifest_checked(Path("nothing.onnx"), "0" * 64)[1].found
        False
    """
    side = manifest_path(p)
    where, data = None, None
    try:
        if side.is_file():
            where, m = "sidecar", Manifest.load(side)
        elif (data := read_embedded_manifest(p)) is not None:
            where, m = "embedded", Manifest.from_dict(data)
        else:
            return None, ManifestCheck(note="no manifest: read from the file alone")
    except ModelError as e:
        return None, ManifestCheck(where=where or "sidecar", path=str(side), note=str(e))
    check = ManifestCheck(True, where, str(side) if where == "sidecar" else None, m.format,
                          f"{m.producer} {m.producer_version}")
    if m.sha256:
        check.sha256_matches = m.sha256 == sha256
        if not check.sha256_matches:
            check.note = ("its sha256 does not match the file: the file changed since export "
                          "(or the manifest belongs to another file)")
    else:
        check.note = "it records no sha256 (an embedded copy cannot hold its own file's hash)"
    return m, check


def kept_float(m: Manifest) -> list[KeptFloat]:
    """What was kept float and why, from the manifest's conversion record (any entry that
    lists layers, nodes or names kept float).

    Example:
        >>> m = Manifest.from_dict({**manifest.to_dict(), "conversion": {"float_layers": {
        ...     "layers": ["dense"], "why": "kept float on request"}}})  # doctest: +SKIP
        >>> kept_float(m)[0].names  # doctest: +SKIP
        ['dense']
    """
    out = []
    for key, entry in (m.conversion or {}).items():
        if "float" not in key or not isinstance(entry, dict):
            continue
        names = next((entry[k] for k in ("names", "layers", "nodes") if entry.get(k)), None)
        if names:
            out.append(KeptFloat(list(names), str(entry.get("why", "")), key))
    return out


def _preprocessing(m: Manifest | None, info: FileInfo) -> ExpectedPreprocessing:
    if m is not None:
        return ExpectedPreprocessing("manifest", str(m.source.get("preprocessing") or
                                                     "recorded at export"),
                                     dataclasses.asdict(m.preprocessing))
    if info.evidence:
        scale, offset, why = info.evidence
        return ExpectedPreprocessing("graph", why, {"scale": scale, "offset": offset})
    return ExpectedPreprocessing("unknown", "no manifest, and the graph does not show how it "
                                 "scales pixels: pass --preprocess to commands that need it")


def inspect_file(path: str | Path) -> FileInfo:
    """What the model file or folder ``path`` is, read without running it.

    Raises:
        ModelError: missing, empty, no kind edgeproof reads, or unreadable as its kind
            (truncated, hostile): one line.

    Example:
        >>> inspect_file("resnet18.onnx").inputs[0].shape_text()  # doctest: +SKIP
        'N?x3x224x224'
    """
    p = Path(path)
    if not p.exists():
        raise ModelError(f"No such file or folder: {p}")
    if p.is_file() and p.stat().st_size == 0:
        raise ModelError(f"{p.name} is empty (0 bytes): the copy or download did not finish.")
    row = reader_for(p)
    sha = sha256_file(p)
    m, check = find_manifest_checked(p, sha)
    info = _read(row, p, sandbox=row.native and check.sha256_matches is not True)
    info.path, info.sha256 = str(p), sha
    info.size_bytes = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) \
        if p.is_dir() else p.stat().st_size
    info.manifest, info.preprocessing = check, _preprocessing(m, info)
    if m is not None:
        info.class_names = list(m.class_names)
        info.kept_float = kept_float(m)
        if info.kept_float and info.integer_kind in ("full-integer", "int16x8"):
            info.notes.append("the manifest lists layers kept float, but every op in the file "
                              "computes in integer: the names matched nothing the converter "
                              "kept float")
    out = info.outputs[0].shape if info.outputs else []
    info.num_classes = len(info.class_names) if info.class_names else \
        out[-1] if len(out) == 2 and isinstance(out[-1], int) else None
    return info


def describe_file(path: str | Path, json_path: str | Path | None = None) -> FileInfo:
    """``inspect_file(path)``, and its JSON written atomically to ``json_path`` when given
    (what ``edgeproof info FILE --json PATH`` does).

    Raises:
        ModelError: as ``inspect_file``.
        UsageError: ``json_path`` cannot be written.

    Example:
        >>> describe_file("m.tflite", "m-info.json").integer_kind  # doctest: +SKIP
        'full-integer'
    """
    info = inspect_file(path)
    if json_path is not None:
        try:
            write_json(json_path, info.to_dict())
        except OSError as e:
            raise UsageError(f"Cannot write --json {json_path}: {e.strerror or e}.") from None
    return info
