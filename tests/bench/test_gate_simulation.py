"""The bound gate's promise, simulated: over many seeded random validation splits of fixed
predictions, the bound-gated pick fails on the held-out images at most at the stated rate
(1 - confidence, with a binomial tolerance on the number of simulations), and the point
gate's pick fails more often; the 299-image edge case. The simulation is
scripts/optimize/gate_simulation.py's (the docs plot comes from its record)."""

from __future__ import annotations

import importlib.util

import pytest
from scipy.stats import binom

from edgeproof.bench.bounds import images_needed
from edgeproof.bench.gate import Gate
from tests.helpers import ROOT

SIMULATIONS = 2000


@pytest.fixture(scope="module")
def sim():
    spec = importlib.util.spec_from_file_location(
        "gate_simulation", ROOT / "scripts" / "optimize" / "gate_simulation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tolerance(rate: float, sims: int) -> int:
    """The most failures a gate keeping ``rate`` shows in ``sims`` runs, but for 1 in 1,000."""
    return int(binom.ppf(0.999, sims, rate))


@pytest.mark.parametrize("ladder,val_size", [("LADDER", 1000), ("WORST", 1000), ("LADDER", 600)])
def test_the_bound_gates_pick_fails_on_new_data_at_most_at_the_stated_rate(sim, ladder,
                                                                           val_size):
    rungs = getattr(sim, ladder)
    bound = sim.simulate(val_size, "bound", SIMULATIONS, ladder=rungs)
    point = sim.simulate(val_size, "point", SIMULATIONS, ladder=rungs)
    promised = 1 - sim.CONFIDENCE
    assert bound["failed"] <= _tolerance(promised, SIMULATIONS), bound
    assert point["failed"] > bound["failed"], (point, bound)
    # the point gate breaks the same promise outright
    assert point["failed"] > _tolerance(promised, SIMULATIONS), point
    assert bound["picked"] > 0, bound  # the bound gate still ships something here


def test_the_bound_gate_corrects_for_the_rungs_it_compares(sim):
    """Seven rungs at 95% overall: each judged at 1 - 0.05 / 7 (Bonferroni)."""
    r = sim.simulate(1000, "bound", 20)
    assert r["level"] == pytest.approx(1 - 0.05 / len(sim.LADDER), abs=1e-6)
    assert len(r["picks"]) == len(sim.LADDER) and sum(r["picks"]) == r["picked"]


def test_too_few_images_prove_nothing_and_nothing_is_picked(sim):
    needed = images_needed(sim.TARGET, 1 - (1 - sim.CONFIDENCE) / len(sim.LADDER))
    r = sim.simulate(needed - 1, "bound", 200)
    assert r["picked"] == 0 and r["failed"] == 0


def test_0_disagreements_in_299_images_prove_99_percent_at_95_and_298_do_not():
    gate = Gate(0.99, None, confidence=0.95)

    def answer(n: int) -> str:
        return gate.verdict({"top1_agreement": 1.0,
                             "parity_counts": {"n": n, "agree": n}}).answer
    assert images_needed(0.99, 0.95) == 299
    assert answer(299) == "passes" and answer(298) == "undecided"
    assert gate.verdict({"top1_agreement": 298 / 299,
                         "parity_counts": {"n": 299, "agree": 298}}).answer == "undecided"
