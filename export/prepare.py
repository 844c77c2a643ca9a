"""The model an integer export converts: the exact rewrites, checked, then bias correction.

``for_integer_export`` applies the exact float rewrites of ``export.rewrites`` (they cost
nothing in float accuracy), proves on the calibration images that they do not move the
float outputs (a rewrite that does is dropped, never shipped), then the calibrated,
deliberately inexact bias correction of ``export.bias_correction`` (it needs calibration
images). All three are on by default for every integer format; the record goes into
each manifest's ``conversion.exact_rewrites``.

Example:
    >>> q_model, record = for_integer_export(model, ctx.calibration_float())  # doctest: +SKIP
    >>> record["applied"], record["max_abs_diff"] < 1e-5  # doctest: +SKIP
    (True, True)
"""

from __future__ import annotations

import numpy as np

from edgeproof.errors import UsageError
from edgeproof.export.bias_correction import correct_biases
from edgeproof.export.rewrites import exact_rewrites

EXACT_TOLERANCE = 1e-5  # max |Δp| on the calibration images for a rewrite to count as exact
EXACT_STEPS = ("fold_batchnorm", "equalize")
STEPS = EXACT_STEPS + ("bias_correction",)
# Bias correction is not exact, but measured on four CIFAR-10 CNNs (docs/OPTIMIZE.md) it
# raised tflite-int8's agreement on every one and onnx-int8's on three: on by default.
DEFAULT_STEPS = STEPS


def _max_diff(a, b, x) -> float:
    return float(np.abs(a(x, training=False).numpy() - b(x, training=False).numpy()).max())


def for_integer_export(model, x: np.ndarray, steps=DEFAULT_STEPS,
                       keep_float=()) -> tuple[object, dict]:
    """``model`` prepared for an integer export by ``steps`` (``none``: as it is), checked
    on ``x`` (float model inputs: the calibration images); returns (model, record).
    ``keep_float``: the converter names that stay float (no bias correction for them).

    Raises:
        UsageError: an unknown step (the message lists the valid ones).
    """
    steps = [s for s in steps if s and s != "none"]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        raise UsageError(f"Unknown rewrite(s) {', '.join(unknown)}; valid: {', '.join(STEPS)}, "
                         "none.")
    if not steps:
        return model, {"steps": [], "why": "turned off (rewrites=none)"}
    sample = x[:64]
    exact = [s for s in steps if s in EXACT_STEPS]
    rewritten, record = exact_rewrites(model, exact) if exact else (model, {})
    record["steps"] = steps
    if rewritten is not model:
        diff = _max_diff(model, rewritten, sample)
        record.update(max_abs_diff=diff, checked_on=f"{len(sample)} calibration images")
        if diff > EXACT_TOLERANCE:
            record.update(applied=False, why=f"max |Δp| {diff:.1e} > {EXACT_TOLERANCE:g}: not "
                                             "exact, not used")
            rewritten = model
        else:
            record["applied"] = True
    if "bias_correction" in steps:
        corrected, record["bias_correction"] = correct_biases(rewritten, x,
                                                              keep_float=keep_float)
        if corrected is not rewritten:
            record["bias_correction"]["float_max_abs_diff"] = _max_diff(rewritten, corrected,
                                                                        sample)
        rewritten = corrected
    return rewritten, record
