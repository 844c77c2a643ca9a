"""docs/OPTIMIZE.md's "How sure is the gate": its simulation table is rendered from the
kept record (docs/optimize/gate_simulation.json, with its command, date and machine),
that record is what the simulation gives, the plot is kept beside it, the figures the
section states are what bench.bounds computes, and the tie rule it quotes is the one
bench/recommend.py writes."""

from __future__ import annotations

import importlib.util
import json
import re

from edgeproof.bench import recommend
from edgeproof.bench.bounds import corrected, images_needed
from tests.helpers import ROOT, assert_doc_in_sync

DATA = ROOT / "docs" / "optimize"
DOC = ROOT / "docs" / "OPTIMIZE.md"


def _section() -> str:
    return DOC.read_text().split("## How sure is the gate", 1)[1]


def test_the_section_is_in_sync_with_its_record():
    assert_doc_in_sync("optimize/gate_simulation.py")
    doc = json.loads((DATA / "gate_simulation.json").read_text())
    assert doc["command"].startswith("python scripts/") and doc["machine"] and doc["created"]
    assert (DATA / "gate_simulation.png").stat().st_size > 10_000
    assert "(optimize/gate_simulation.png)" in _section()


def test_the_record_is_what_the_simulation_gives():
    spec = importlib.util.spec_from_file_location(
        "gate_simulation", ROOT / "scripts" / "optimize" / "gate_simulation.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    doc = json.loads((DATA / "gate_simulation.json").read_text())
    kept = next(r for r in doc["rows"] if r["val_size"] == 1000 and r["gate"] == "bound")
    assert mod.simulate(1000, "bound", doc["simulations"], doc["seed"],
                        tuple(doc["ladder"]), doc["population"]) == kept
    for r in doc["rows"]:  # what the section says of them holds in the record
        if r["gate"] == "bound":
            assert r["failure_rate"] <= 1 - doc["confidence"], r
    assert all(p["failure_rate"] > b["failure_rate"] for p, b in
               zip(doc["rows"][0::2], doc["rows"][1::2]))


def test_the_stated_figures_are_computed():
    text = _section()
    assert "**299** images are needed to prove 99% at 95% (298 do not)" in text
    assert images_needed(0.99, 0.95) == 299
    assert re.search(r"\*\*597\*\* when the level is Bonferroni's over 20 rungs \(99\.75% each\)",
                     text)
    assert images_needed(0.99, corrected(0.95, 20)) == 597


def test_the_tie_rule_is_quoted_from_its_one_place():
    def words(s: str) -> str:
        return " ".join(s.replace("``", "`").replace("**", "").split())
    source = words(recommend.__doc__)
    quote = words(_section().split("quoted here:", 1)[1].split("An A/A run", 1)[0])
    assert quote and quote in source, quote
