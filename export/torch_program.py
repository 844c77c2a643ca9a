"""A PyTorch reference as a program to lower (ExecuTorch, litert-torch), and the check of
what was lowered against PyTorch itself on real images.

``export_program`` re-exports the reference's module (a ``.pt2``'s ``program.module()``,
a TorchScript module through ``TS2EPConverter``) with a **contiguous** example (an
example permuted from NHWC arrays is channels_last, and a ``.pte`` lowered from it
expects that dim order: fed ordinary tensors it answers wrongly and says nothing), a
softmax appended when the model ends in logits (every export outputs probabilities), and:

1. a dynamic batch (``torch.export.Dim``), the example's batch 2;
2. else the batch fixed as the saved program's (a ``.pt2`` exported without a dynamic
   batch is guarded to its example's batch), re-traced with a contiguous example of it.

While tracing and lowering, PyTorch's NNPACK and oneDNN convolution backends are off:
the fake convolution picks one from the batch hint and the choice guards a dynamic
batch to ``< 16``, so a program lowered with them on plans its memory for 15 images
(the flags choose eager kernels only; the graph's arithmetic is the same).

``check_against_torch`` runs a lowered file (any ``run(x) -> probabilities``) beside the
reference at batch 1 and above, and ``refusal`` says why a check does not pass.

Example:
    >>> prog = export_program(ref, x)  # doctest: +SKIP
    >>> prog.how, prog.batch  # doctest: +SKIP
    ('dynamic batch', None)
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgeproof.errors import ExportError, first_line
from edgeproof.export.context import source_of
from edgeproof.quiet import quiet_native
from edgeproof.reference_torch import torch_module

EXAMPLE_BATCH = 2      # the example's batch: 1 would let torch.export specialise it
DIM_MAX = 4096         # the dynamic batch's upper bound as traced (a .pte plans for less)
FP32_TOLERANCE = 1e-4  # max |Δp| of a float export against PyTorch on the check images
INT8_FLOOR = 0.8       # top-1 agreement below this is a broken lowering, not int8 rounding
LOGGERS = ("torch", "torchao", "executorch", "litert_torch", "absl", "")


@dataclass
class Program:
    """A re-exported program and how it was made.

    Attributes:
        program: the ``torch.export.ExportedProgram``.
        how: ``dynamic batch`` or ``fixed batch N``.
        batch: the fixed batch, or None (dynamic).
        layout: the input layout the program takes (``NCHW``; ``NHWC`` when wrapped).
        not_taken: the candidates tried before it, with their errors.
        max_batch: the dynamic batch's upper bound (ExecuTorch plans memory for it).
    """

    program: object
    how: str
    batch: int | None
    layout: str = "NCHW"
    not_taken: list[dict] = field(default_factory=list)
    max_batch: int = DIM_MAX

    def tensor(self, x: np.ndarray):
        """Float NHWC images as this program's input tensor (contiguous).

        Example:
            >>> prog.tensor(x[:2]).shape  # doctest: +SKIP
            torch.Size([2, 3, 16, 16])
        """
        torch = torch_module()
        arr = x if self.layout == "NHWC" else x.transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))

    def example(self, x: np.ndarray):
        """The example it was traced with: ``batch`` (or 2) of ``x``'s images."""
        return self.tensor(batch_of(x, self.batch or EXAMPLE_BATCH))

    def dynamic_shapes(self):
        """``dynamic_shapes`` for re-exporting its module (None for a fixed batch)."""
        if self.batch is not None:
            return None
        return ({0: torch_module().export.Dim("batch", min=1, max=self.max_batch)},)

    def reexport(self, module, x: np.ndarray):
        """``module`` (this program's, quantized say) exported the same way.

        Example:
            >>> ep = prog.reexport(convert_pt2e(prepared), x)  # doctest: +SKIP
        """
        torch = torch_module()
        with quiet_torch():
            return torch.export.export(module, (self.example(x),),
                                       dynamic_shapes=self.dynamic_shapes())


def batch_of(x: np.ndarray, n: int) -> np.ndarray:
    """``n`` images of ``x`` (the first ones, repeated when there are fewer).

    Example:
        >>> batch_of(np.zeros((1, 2, 2, 3)), 3).shape
        (3, 2, 2, 3)
    """
    return x[:n] if len(x) >= n else np.resize(x, (n, *x.shape[1:]))


@contextlib.contextmanager
def quiet_torch():
    """Tracing and lowering with the backend guards off (module docstring) and the
    libraries' progress, warnings and native logs silenced."""
    torch = torch_module()
    saved = {n: logging.getLogger(n or None).level for n in LOGGERS}
    for n in saved:
        logging.getLogger(n or None).setLevel(logging.ERROR)
    try:
        with quiet_native(), warnings.catch_warnings(), \
                torch.backends.nnpack.flags(enabled=False), \
                torch.backends.mkldnn.flags(enabled=False):
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n or None).setLevel(level)


def _module(ref, x: np.ndarray, batch: int):
    """The reference's module; a TorchScript one through ``TS2EPConverter`` (torch.export
    does not take ScriptModules), traced on an NCHW example."""
    if ref.kind != "torchscript":
        return ref.extras["module"]
    from torch._export.converter import TS2EPConverter

    return TS2EPConverter(ref.extras["module"], (Program(None, "", batch).example(x),)) \
        .convert().module()


def _wrapped(module, logits: bool, layout: str):
    """The module with a softmax after it (logits) and NHWC input (``layout`` NHWC)."""
    torch = torch_module()

    class Probabilities(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            if layout == "NHWC":  # litert_torch.to_channel_last_io's permute, at the input:
                x = x.permute(0, 3, 1, 2)  # the converter folds it into NHWC convolutions
            y = self.inner(x)
            return torch.softmax(y, dim=1) if logits else y

    return Probabilities(module)


def export_program(ref, x: np.ndarray, layout: str = "NCHW", max_batch: int = DIM_MAX,
                   batches: tuple | None = None) -> Program:
    """The reference's module re-exported for lowering (module docstring).

    Args:
        ref: a ``torch_export`` or ``torchscript`` Reference.
        x: float NHWC images (the check images): the example comes from them.
        layout: the input layout of the program: ``NCHW`` (PyTorch's) or ``NHWC``.
        max_batch: the dynamic batch's upper bound.
        batches: the batches to try in order (None: dynamic); default a dynamic batch,
            then the reference's fixed batch (or 2).

    Raises:
        ExportError: no batch tried exports (every reason).

    Example:
        >>> export_program(ref, x).program.range_constraints  # doctest: +SKIP
        {s77: VR[1, 4096]}
    """
    torch = torch_module()
    fixed = ref.extras.get("batch")
    tried: list[dict] = []
    for batch in batches or (None, fixed or EXAMPLE_BATCH):
        prog = Program(None, f"fixed batch {batch}" if batch else "dynamic batch", batch,
                       layout, list(tried), max(max_batch, EXAMPLE_BATCH))
        try:
            with quiet_torch():
                module = _wrapped(_module(ref, x, batch), ref.outputs_logits, layout)
                prog.program = torch.export.export(module, (prog.example(x),),
                                                   dynamic_shapes=prog.dynamic_shapes())
            return prog
        except Exception as e:
            tried.append({"exported": prog.how, "error": first_line(e, 200)})
    raise ExportError(f"torch.export cannot re-export {ref.describe()}: "
                      + "; ".join(f"{t['exported']}: {t['error']}" for t in tried))


def pt2e_quantized(prog: Program, quantizer, x: np.ndarray, fold: bool = True):
    """``prog``'s module quantized by PT2E (``prepare_pt2e``, calibration on ``x``,
    ``convert_pt2e``), in batches of its fixed batch (or 32), the last one padded.

    Example:
        >>> q = pt2e_quantized(prog, XNNPACKQuantizer().set_global(cfg), x)  # doctest: +SKIP
    """
    torch = torch_module()
    step = prog.batch or 32
    with quiet_torch():
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        prepared = prepare_pt2e(prog.program.module(), quantizer)
        with torch.no_grad():
            for i in range(0, len(x), step):
                chunk = x[i:i + step]
                prepared(prog.tensor(batch_of(chunk, step) if prog.batch else chunk))
        return convert_pt2e(prepared, fold_quantize=fold)


def check_against_torch(run: Callable[[np.ndarray], np.ndarray], ref, x: np.ndarray,
                        batch: int | None, max_batch: int = 8) -> dict:
    """A lowered file's answers beside PyTorch's on ``x`` at batch 1 and at a larger batch
    (only its own for a fixed-batch file).

    Args:
        run: float NHWC images of one batch -> class probabilities (the file's runtime).
        ref: the PyTorch reference (``ref.predict``: probabilities).
        batch: the file's fixed batch, or None.
        max_batch: the largest batch the file takes.

    Returns:
        ``{"batch_sizes", "images", "top1_agreement", "max_abs_dp"}`` (the worst over
        the batch sizes).

    Example:
        >>> check_against_torch(lambda b: ref.predict(b), ref, x, None)["top1_agreement"]  # doctest: +SKIP
        1.0
    """
    sizes = [batch] if batch else [1, max(2, min(8, max_batch, len(x)))]
    want = ref.predict(x)
    worst, agree = 0.0, 1.0
    for b in sizes:
        got = np.concatenate([run(batch_of(x[i:i + b], b))[:len(x[i:i + b])]
                              for i in range(0, len(x), b)])
        worst = max(worst, float(np.abs(got - want).max()))
        agree = min(agree, float((got.argmax(1) == want.argmax(1)).mean()))
    return {"batch_sizes": sizes, "images": int(len(x)), "top1_agreement": agree,
            "max_abs_dp": worst}


def refusal(check: dict, integer: bool) -> str | None:
    """Why ``check`` does not pass, or None: a float file must agree on every image within
    ``FP32_TOLERANCE``; an integer one on ``INT8_FLOOR`` of them at every batch size.

    Example:
        >>> refusal({"top1_agreement": 1.0, "max_abs_dp": 2e-6}, integer=False) is None
        True
        >>> refusal({"top1_agreement": 0.25, "max_abs_dp": 0.9}, integer=True)
        'agrees with PyTorch on 25.0% of the check images (below 80%)'
    """
    agree, dp = check["top1_agreement"], check["max_abs_dp"]
    if integer:
        return None if agree >= INT8_FLOOR else \
            f"agrees with PyTorch on {100 * agree:.1f}% of the check images (below " \
            f"{100 * INT8_FLOOR:.0f}%)"
    if agree < 1.0 or dp > FP32_TOLERANCE:
        return f"disagrees with PyTorch (top-1 {100 * agree:.1f}%, max |Δp| {dp:.1e})"
    return None


def require_torch_reference(model, fmt: str):
    """The PyTorch Reference behind ``model``, or a one-line ExportError for the others.

    Example:
        >>> require_torch_reference(load_reference("m.keras"), "executorch-fp32")  # doctest: +SKIP
        Traceback (most recent call last):
        ...
        edgeproof.errors.ExportError: executorch-fp32 is made from a PyTorch model ...
    """
    ref = source_of(model)
    if ref.kind not in ("torch_export", "torchscript"):
        raise ExportError(f"{fmt} is made from a PyTorch model (.pt2 or TorchScript); "
                          f"{ref.describe()} is not one: use the tflite-* or onnx-* formats.")
    return ref
