"""The flatbuffer analysis behind `edgeproof memory` (no interpreter): ops, MACs, tensor
lifetimes, the greedy arena plan and its peak, the embedded manifest's flash; a file that
is not a TFLite flatbuffer is a one-line error."""

from __future__ import annotations

import pytest

from edgeproof.bench.micro import analyze, lifetimes, macs, plan, read_graph
from edgeproof.errors import ModelError
from tests.bench.micro_models import tiny_int8


def test_ops_macs_and_lifetimes_of_a_tiny_model():
    g = read_graph(tiny_int8())
    assert g.op_counts() == {"RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1}
    assert macs(g) == {"FULLY_CONNECTED": 160, "total": 160}  # 10 outputs x 16 inputs
    names = {t.index: t.name for t in g.tensors}
    life = {names[t]: span for t, span in lifetimes(g).items()}
    # constants (shape, weights, bias) are not planned; the input lives until RESHAPE reads
    # it (op 0 at t=1), the output to the end
    assert life == {"image": (0, 1), "flat": (1, 2), "logits": (2, 3), "probs": (3, 3)}


def test_the_greedy_plan_reuses_memory_and_names_the_peak():
    g = read_graph(tiny_int8())
    p = plan(g)
    # every buffer is 16 bytes after alignment; at most two are live at once
    assert p.head_bytes == 32 and p.peak_live_bytes == 32
    assert g.ops[p.peak_op].name == "RESHAPE"
    a = analyze(tiny_int8())
    assert a.computed_arena_bytes == 32 and a.macs == 160
    assert a.peak["op"] == "RESHAPE" and a.peak["largest"][0]["bytes"] == 16
    assert a.flash_bytes == len(tiny_int8()) and a.manifest_bytes == 0


def test_a_file_that_is_not_a_flatbuffer_is_one_line():
    with pytest.raises(ModelError, match="Not a TFLite flatbuffer") as e:
        read_graph(b"\x08\x07onnx-ish bytes")
    assert "\n" not in str(e.value)
    with pytest.raises(ModelError, match="Cannot read the TFLite graph"):
        read_graph(b"\x00\x00\x00\x00TFL3" + b"\xff" * 8)


@pytest.mark.slow
def test_a_converted_model_counts_its_embedded_manifest_as_flash(tiny_exports):
    data = tiny_exports["tflite-int8"].read_bytes()
    a = analyze(data)
    assert a.flash_bytes == len(data)
    assert 500 < a.manifest_bytes < 5000  # the JSON manifest edgeproof embeds
    assert a.macs > 0 and a.peak["op"] in a.ops
