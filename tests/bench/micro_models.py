"""Tiny full-integer TFLite files built by hand with the flatbuffer schema (no TensorFlow,
no converter: milliseconds), for the microcontroller tests, with their manifests.

``tiny_int8()``: a 4x4x1 int8 image → RESHAPE → FULLY_CONNECTED (16 → 10) → SOFTMAX, 10
classes; ``tiny_int8("GELU")`` ends in an op TFLM has no kernel for."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeproof.manifest import Manifest, Preprocessing, TensorInfo, sha256_bytes

IN_SCALE, IN_ZP = 1 / 255, -128  # uint8 pixel p (scale 1/255) quantizes to p - 128
OUT_SCALE, OUT_ZP = 1 / 256, -128  # TFLM's int8 softmax output


def tiny_int8(last_op: str = "SOFTMAX", seed: int = 0) -> bytes:
    """The model's flatbuffer bytes."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as fb

    rng = np.random.default_rng(seed)
    bufs, tensors, codes, ops = [fb.BufferT()], [], [], []

    def tensor(name, shape, ttype, scale=None, zp=None, data=None):
        t = fb.TensorT()
        t.name, t.shape, t.type, t.buffer = name, list(shape), ttype, 0
        if data is not None:
            b = fb.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
            bufs.append(b)
            t.buffer = len(bufs) - 1
        if scale is not None:
            q = fb.QuantizationParametersT()
            q.scale, q.zeroPoint = [float(scale)], [int(zp)]
            t.quantization = q
        tensors.append(t)
        return len(tensors) - 1

    def op(name, ins, outs, opt_type=0, opt=None):
        code = getattr(fb.BuiltinOperator, name)
        if code not in [c.builtinCode for c in codes]:
            c = fb.OperatorCodeT()
            c.builtinCode, c.deprecatedBuiltinCode, c.version = code, min(code, 127), 1
            codes.append(c)
        o = fb.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = [c.builtinCode for c in codes].index(code), ins, outs
        if opt is not None:
            o.builtinOptionsType, o.builtinOptions = opt_type, opt
        ops.append(o)

    i8, i32 = fb.TensorType.INT8, fb.TensorType.INT32
    x = tensor("image", [1, 4, 4, 1], i8, IN_SCALE, IN_ZP)
    shape = tensor("shape", [2], i32, data=np.array([1, 16], np.int32))
    flat = tensor("flat", [1, 16], i8, IN_SCALE, IN_ZP)
    w = tensor("weights", [10, 16], i8, 0.01, 0,
               data=rng.integers(-127, 128, (10, 16), dtype=np.int8))
    b = tensor("bias", [10], i32, 0.01 * IN_SCALE, 0,
               data=rng.integers(-500, 500, 10).astype(np.int32))
    logits = tensor("logits", [1, 10], i8, 0.05, 0)
    probs = tensor("probs", [1, 10], i8, OUT_SCALE, OUT_ZP)
    reshape = fb.ReshapeOptionsT()
    reshape.newShape = [1, 16]
    op("RESHAPE", [x, shape], [flat], fb.BuiltinOptions.ReshapeOptions, reshape)
    op("FULLY_CONNECTED", [flat, w, b], [logits], fb.BuiltinOptions.FullyConnectedOptions,
       fb.FullyConnectedOptionsT())
    if last_op == "SOFTMAX":
        soft = fb.SoftmaxOptionsT()
        soft.beta = 1.0
        op("SOFTMAX", [logits], [probs], fb.BuiltinOptions.SoftmaxOptions, soft)
    else:
        op(last_op, [logits], [probs])
    sg = fb.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators = tensors, [x], [probs], ops
    m = fb.ModelT()
    m.version, m.description, m.subgraphs, m.operatorCodes, m.buffers = \
        3, "edgeproof test model", [sg], codes, bufs
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def manifest_for(data: bytes) -> Manifest:
    """The manifest of a tiny model's bytes (grayscale 4x4, 10 classes, int8 in and out)."""
    return Manifest(format="tflite-int8", class_names=[str(i) for i in range(10)],
                    input=TensorInfo("image", [1, 4, 4, 1], "int8",
                                     quantization={"scale": IN_SCALE, "zero_point": IN_ZP}),
                    output=TensorInfo("probs", [1, 10], "int8",
                                      quantization={"scale": OUT_SCALE, "zero_point": OUT_ZP}),
                    preprocessing=Preprocessing(size=[4, 4], color="grayscale"),
                    sha256=sha256_bytes(data), size_bytes=len(data))


def write_tiny(folder: Path, last_op: str = "SOFTMAX", name: str | None = None) -> Path:
    """``folder/<name>.tflite`` and its sidecar manifest; returns the model's path."""
    data = tiny_int8(last_op)
    path = Path(folder) / f"{name or 'tiny-' + last_op.lower()}.tflite"
    path.write_bytes(data)
    path.with_name(path.name + ".json").write_text(manifest_for(data).to_json())
    return path
