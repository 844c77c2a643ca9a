"""A sandbox worker that dies is a WorkerDied; an error raised inside it comes back as itself,
so callers tell a crash from a refusal by type, not by the message's words."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from edgeproof.bench.isolate import run_isolated
from edgeproof.errors import RuntimeFailure, UsageError, WorkerDied
from edgeproof.validation import check_choice


def test_a_worker_that_dies_is_a_worker_died():
    with pytest.raises(WorkerDied) as got:
        run_isolated(os._exit, 3)
    assert isinstance(got.value, RuntimeFailure)


def test_an_error_raised_in_the_worker_is_not_a_crash():
    with pytest.raises(UsageError) as got:
        run_isolated(check_choice, "runtime", "tvm", ["litert"], "bench")
    assert not isinstance(got.value, WorkerDied)


@pytest.mark.parametrize("raised, expected", [
    (WorkerDied("The benchmark worker process died"), "crashed loading m.tflite in a sandbox"),
    (RuntimeFailure("litert: the file has no subgraph"), "the file has no subgraph"),
])
def test_the_sandbox_probe_reports_a_crash_by_its_type(monkeypatch, raised, expected):
    from edgeproof.bench import isolate
    from edgeproof.bench.runtimes.base import Runtime

    def fake(*a, **k):
        raise raised

    monkeypatch.setattr(isolate, "run_isolated", fake)
    runtime = SimpleNamespace(name="litert", manifest=None, opts={})
    with pytest.raises(RuntimeFailure, match=expected) as got:
        Runtime._probe_in_sandbox(runtime, Path("m.tflite"))
    assert not isinstance(got.value, WorkerDied)
