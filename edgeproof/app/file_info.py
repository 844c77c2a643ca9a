"""What a model file is, read without running it: the records ``edgeproof info`` shows and
writes as JSON.

A reader per kind (``app.file_kinds``) fills a ``FileInfo`` with what the file itself says:
its format and producer, its inputs and outputs (``TensorSummary``: shape with the dynamic
axes marked, dtype, layout, quantization), its integer kind, its op histogram, the
XNNPACK partitions of a ``.tflite`` (``Delegation``), the files it needs beside it
(``CompanionFile``), and what its graph shows about preprocessing. The common step then
adds what every kind shares: size and sha256, the manifest (``ManifestCheck``: found
where, and whether its sha256 matches), the preprocessing and whether it came from the
manifest or the graph, class names, and what was kept float and why (``KeptFloat``).

A dynamic axis is a string: its symbolic name (an ONNX ``dim_param``, a torch.export
symbol), ``N`` for an unnamed batch axis, ``?`` for any other unnamed one; the console
marks it with a ``?`` after the name.

Example:
    >>> t = TensorSummary("input", ["N", 3, 224, 224], "float32")
    >>> t.shape_text(), t.layout
    ('N?x3x224x224', 'NCHW')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgeproof.bench.table import fmt_size

# Integer kinds, the first word of ``FileInfo.integer_kind``.
INTEGER_KINDS = ("full-integer", "int16x8", "mixed", "dynamic-range", "float16", "float",
                 "unknown")


def dims(values, names=None) -> list[int | str]:
    """Shape entries with the dynamic ones as strings (see the module docstring).

    Args:
        values: sizes, with ``-1``, ``0`` or ``None`` where the axis is dynamic.
        names: the symbolic name of each axis where the file has one (else ``""``).

    Example:
        >>> dims([-1, 16, 16, 1]), dims([None, 3, None], ["batch", "", ""])
        (['N', 16, 16, 1], ['batch', 3, '?'])
    """
    names = list(names or [])
    out: list[int | str] = []
    for i, v in enumerate(values):
        if isinstance(v, int) and v > 0:
            out.append(int(v))
            continue
        name = names[i] if i < len(names) and names[i] else ""
        out.append(str(name) or ("N" if i == 0 else "?"))
    return out


def image_layout(shape) -> str | None:
    """``NHWC`` or ``NCHW`` for a 4-d image shape with 1 or 3 channels, else None.

    Example:
        >>> image_layout(["N", 3, 224, 224]), image_layout([1, 224, 224, 3]), image_layout([1, 10])
        ('NCHW', 'NHWC', None)
    """
    if len(shape) != 4:
        return None
    c1, c3 = shape[1], shape[3]
    if c1 in (1, 3) and c3 not in (1, 3):
        return "NCHW"
    if c3 in (1, 3):
        return "NHWC"
    return None


@dataclass
class TensorSummary:
    """One input or output of the file.

    Attributes:
        name: its name in the file.
        shape: sizes; a string is a dynamic axis (see the module docstring).
        dtype: ``float32``, ``uint8``, ... (None where the file does not say).
        layout: ``NHWC`` / ``NCHW`` for an image tensor (read off the shape when not given).
        quantization: ``{"scale": s, "zero_point": z}`` of an integer tensor, else None.
    """

    name: str
    shape: list
    dtype: str | None = None
    layout: str | None = None
    quantization: dict | None = None

    def __post_init__(self):
        if self.layout is None:
            self.layout = image_layout(self.shape)

    def shape_text(self) -> str:
        """The shape as ``N?x3x224x224`` (``?`` marks a dynamic axis; ``scalar`` for none).

        Example:
            >>> TensorSummary("x", ["batch", 10]).shape_text()
            'batch?x10'
        """
        if not self.shape:
            return "scalar"
        return "x".join(d if d == "?" else f"{d}?" if isinstance(d, str) else str(d)
                        for d in self.shape)

    def dynamic_axes(self) -> list[int]:
        """The positions of the dynamic axes.

        Example:
            >>> TensorSummary("x", ["N", 3, "?", "?"]).dynamic_axes()
            [0, 2, 3]
        """
        return [i for i, d in enumerate(self.shape) if isinstance(d, str)]

    def quantization_text(self) -> str:
        """``scale 0.0039 zero-point 0`` (``-`` for a float tensor).

        Example:
            >>> TensorSummary("x", [1], "uint8", quantization={"scale": 1 / 255, "zero_point": 0}).quantization_text()
            'scale 0.00392157 zero-point 0'
        """
        q = self.quantization
        return f"scale {q['scale']:.6g} zero-point {q['zero_point']}" if q else "-"

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape),
                "dynamic_axes": self.dynamic_axes(), "dtype": self.dtype, "layout": self.layout,
                "quantization": self.quantization}


@dataclass
class Delegation:
    """Which ops an accelerator delegate takes when the file is loaded (not run).

    Attributes:
        delegate: ``XNNPACK``.
        partitions: the delegate's partitions (one DELEGATE node each).
        ops: the graph's ops before delegation.
        left_out: ``{op: count}`` of the ops left on builtin kernels.
        note: why there is no figure, or what to know about it.
    """

    delegate: str
    partitions: int | None = None
    ops: int | None = None
    left_out: dict = field(default_factory=dict)
    note: str | None = None


@dataclass
class CompanionFile:
    """A file the model needs beside it (ONNX external data, an IR's ``.bin``)."""

    path: str
    role: str
    exists: bool
    size_bytes: int | None = None


@dataclass
class ManifestCheck:
    """Whether edgeproof's manifest was found (``sidecar``: ``<file>.json``; ``embedded``: in
    the file), its export format, and whether its sha256 matches the file (None: it
    records none, as an embedded copy cannot hold its own file's hash)."""

    found: bool = False
    where: str | None = None
    path: str | None = None
    format: str | None = None
    producer: str | None = None
    sha256_matches: bool | None = None
    note: str | None = None


@dataclass
class KeptFloat:
    """Layers or nodes kept float in an integer export, and why (the manifest's
    conversion record ``key``)."""

    names: list
    why: str
    key: str


@dataclass
class ExpectedPreprocessing:
    """The pixels the model expects, and where that was read: ``manifest``, ``graph`` (its
    first layers or ops) or ``unknown``; ``fields`` are the manifest's preprocessing (or
    the scale and offset the graph shows)."""

    source: str = "unknown"
    why: str = ""
    fields: dict = field(default_factory=dict)

    def text(self) -> str:
        """One line: ``pixels * 0.00392157 + 0, rgb, 32x32 (manifest)``.

        Example:
            >>> ExpectedPreprocessing("graph", "a Rescaling", {"scale": 1.0, "offset": 0.0}).text()
            'pixels * 1 + 0 (graph: a Rescaling)'
        """
        f = self.fields
        if not f:
            return f"unknown: {self.why}" if self.why else "unknown"
        parts = [f"pixels * {f.get('scale', 1.0):.6g} + {f.get('offset', 0.0):.6g}"]
        if f.get("mean") is not None:
            parts.append(f"then (x - {f['mean']}) / {f.get('std')}")
        if f.get("color"):
            parts.append(f["color"] if f["color"] == "grayscale"
                         else f"{f['color']} {f.get('channel_order', 'RGB')}")
        if f.get("size"):
            parts.append("x".join(map(str, f["size"])) + f" {f.get('interpolation', '')}".rstrip())
        return ", ".join(parts) + f" ({self.source}" + (f": {self.why})" if self.why else ")")


@dataclass
class FileInfo:
    """Everything ``edgeproof info`` says about one file (see the module docstring).

    A reader fills the file's own facts; ``app.file_kinds.inspect_file`` the rest.
    ``details`` holds a few facts only one kind has (opset, signatures, dim order,
    OpenVINO's devices); ``evidence`` is what the graph shows about preprocessing,
    ``(scale, offset, why)``, before the manifest is consulted.
    """

    path: str
    kind: str
    format: str
    producer: str | None = None
    inputs: list[TensorSummary] = field(default_factory=list)
    outputs: list[TensorSummary] = field(default_factory=list)
    integer_kind: str = "unknown"
    integer_why: str = ""
    ops: dict = field(default_factory=dict)
    delegation: Delegation | None = None
    files: list[CompanionFile] = field(default_factory=list)
    class_names: list | None = None
    details: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    evidence: tuple | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    manifest: ManifestCheck = field(default_factory=ManifestCheck)
    preprocessing: ExpectedPreprocessing = field(default_factory=ExpectedPreprocessing)
    num_classes: int | None = None
    kept_float: list[KeptFloat] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The stable JSON of ``edgeproof info --json`` (README, "edgeproof info").

        Example:
            >>> sorted(FileInfo("m.onnx", "onnx", "ONNX").to_dict())[:4]
            ['class_names', 'delegation', 'details', 'files']
        """
        return {
            "path": self.path, "kind": self.kind, "format": self.format,
            "producer": self.producer, "size_bytes": self.size_bytes, "sha256": self.sha256,
            "files": [asdict(f) for f in self.files], "manifest": asdict(self.manifest),
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "integer": {"kind": self.integer_kind, "why": self.integer_why},
            "preprocessing": {"source": self.preprocessing.source,
                              "why": self.preprocessing.why, **self.preprocessing.fields},
            "class_names": self.class_names, "num_classes": self.num_classes,
            "kept_float": [asdict(k) for k in self.kept_float],
            "ops": dict(self.ops), "op_count": sum(self.ops.values()),
            "delegation": asdict(self.delegation) if self.delegation else None,
            "details": dict(self.details), "notes": list(self.notes)}


def _counts(counts: dict, limit: int = 12) -> str:
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    text = ", ".join(f"{k} {v}" for k, v in items[:limit])
    return text + (f", … ({len(items) - limit} more kinds)" if len(items) > limit else "")


def _text(v) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k} {x}" for k, x in v.items())
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def _manifest_text(m: ManifestCheck) -> str:
    if not m.found:
        return m.note or "none"
    match = {True: "sha256 matches the file", False: "sha256 does NOT match the file",
             None: "no sha256 to check"}[m.sha256_matches]
    where = f"beside it ({m.path})" if m.where == "sidecar" else "embedded in the file"
    return f"{m.format} by {m.producer}, {where}; {match}"


def _classes_text(info: FileInfo) -> str:
    if info.class_names:
        names = [str(n) for n in info.class_names]
        shown = ", ".join(names[:10]) + (f", … (+{len(names) - 10})" if len(names) > 10 else "")
        return f"{len(names)}: {shown}"
    if info.num_classes:
        return f"{info.num_classes} (no names: no manifest or labels in the file)"
    return "unknown"


def _delegation_text(d: Delegation) -> str:
    if d.partitions is None:
        return d.note or "-"
    left = _counts(d.left_out) if d.left_out else "none"
    text = f"{d.partitions} partition(s) over {d.ops} ops; left out (builtin kernels): {left}"
    return text + (f" ({d.note})" if d.note else "")


def summary_rows(info: FileInfo) -> list[tuple[str, str]]:
    """(what, value) lines of the console view, in the order a reader asks them.

    Example:
        >>> summary_rows(FileInfo("m.onnx", "onnx", "ONNX (IR 8, opset 17)"))[1]
        ('format', 'ONNX (IR 8, opset 17)')
    """
    size = f"{fmt_size(info.size_bytes)}" if info.size_bytes is not None else "?"
    rows = [("file", f"{info.path} ({size}, sha256 {(info.sha256 or '?')[:16]}…)"),
            ("format", info.format), ("producer", info.producer or "not recorded"),
            ("manifest", _manifest_text(info.manifest)),
            ("integer", f"{info.integer_kind}: {info.integer_why}"),
            ("preprocessing", info.preprocessing.text()), ("classes", _classes_text(info))]
    rows += [("kept float", f"{', '.join(map(str, k.names))}: {k.why}") for k in info.kept_float]
    rows.append(("ops", f"{sum(info.ops.values())}: {_counts(info.ops)}" if info.ops else "-"))
    if info.delegation is not None:
        rows.append((info.delegation.delegate, _delegation_text(info.delegation)))
    rows += [("needs", f"{f.path} ({f.role}; " + (f"{f.size_bytes} bytes)" if f.exists
                                                  else "MISSING)")) for f in info.files]
    if info.details:
        rows.append(("details", "; ".join(f"{k} {_text(v)}" for k, v in info.details.items()
                                          if v not in (None, [], {}))))
    rows += [("note", n) for n in info.notes]
    return rows


TENSOR_COLUMNS = ["", "name", "shape", "dtype", "layout", "quantization"]


def tensor_rows(info: FileInfo) -> list[tuple[str, ...]]:
    """One row per input and output: ``TENSOR_COLUMNS`` (``?`` marks a dynamic axis).

    Example:
        >>> tensor_rows(FileInfo("m", "onnx", "ONNX", inputs=[TensorSummary("x", ["N", 3, 8, 8], "float32")]))
        [('input', 'x', 'N?x3x8x8', 'float32', 'NCHW', '-')]
    """
    return [(role, t.name, t.shape_text(), t.dtype or "?", t.layout or "-", t.quantization_text())
            for role, group in (("input", info.inputs), ("output", info.outputs)) for t in group]
