"""Sized validation: how many validation images ``optimize``'s gate needs to prove anything.

A bound gate (``bench.gate``) can only pass a candidate whose agreement's lower bound
clears ``--min-agreement``; with n images and not one disagreement the bound is at most
``(1 - level) ** (1 / n)``, so below some n nothing can pass, however good the export:
299 images for 99% at 95% confidence, about 600 when the ladders hold 20 rungs
(Bonferroni: 99.75% each). ``sizing`` computes these figures for the validation split
before the search (``bench.bounds``, never a hard-coded table); ``check`` refuses a
split too small to prove the target ("cannot prove 99% with 360 validation images")
instead of picking, and ``warning`` says when the split proves it only for a candidate
that agrees on almost every image. ``with_val_size`` re-splits train + validation so
that validation has ``--val-size`` images (the test split is never touched).

Example:
    >>> from edgeproof.bench.gate import Gate
    >>> s = sizing(Gate(0.99, None), 360)
    >>> s.needed, s.allowed
    (299, 0)
    >>> sizing(Gate(0.99, None).for_candidates(20), 360).needed
    597
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from edgeproof.bench.bounds import disagreements_allowed, images_needed
from edgeproof.bench.gate import Gate
from edgeproof.datasets import Dataset
from edgeproof.errors import GateUndecided, UsageError


@dataclass(frozen=True)
class Sizing:
    """What ``images`` validation images can prove for a gate at ``level`` over
    ``compared`` candidates: the fewest images that prove ``min_agreement`` with not one
    disagreement (``needed``), the images that prove it for a candidate agreeing on
    ``room_at`` (``room``), and the disagreements ``images`` allow (``allowed``; None:
    not even zero)."""

    images: int
    min_agreement: float | None
    level: float
    compared: int
    needed: int | None = None
    room_at: float | None = None
    room: int | None = None
    allowed: int | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """One line for the progress output and optimize.md."""
        if self.needed is None:
            return f"{self.images:,} validation images (no agreement limit to prove)"
        return (f"the gate needs >= {self.needed:,} validation images to prove top-1 "
                f"agreement >= {100 * self.min_agreement:g}% at all ({_each(self)}, not one "
                f"disagreement); {self.images:,} allow "
                + ("none" if self.allowed is None else f"{self.allowed:,} disagreements")
                + (f"; a candidate agreeing on {100 * self.room_at:g}% needs {self.room:,}"
                   if self.room else ""))

    def check(self, gate: Gate) -> None:
        """Refuse a split too small to prove the target: GateUndecided (exit 4)."""
        if gate.mode != "bound" or self.needed is None or self.images >= self.needed:
            return
        raise GateUndecided(
            f"cannot prove {100 * self.min_agreement:g}% with {self.images:,} validation "
            f"images: the gate ({_each(self)}) needs at least {self.needed:,} even with not one "
            f"disagreement ({self.room:,} for a candidate agreeing on {100 * self.room_at:g}%); "
            f"pass --val-size {self.room or self.needed} (taken from the train split), fewer "
            "--formats, a lower --confidence, or --gate point.")

    def warning(self) -> str | None:
        """A warning when the split proves the target only for a candidate that agrees on
        almost every image (fewer images than ``room``)."""
        if self.needed is None or self.room is None or self.images >= self.room \
                or self.images < self.needed:
            return None
        return (f"WARNING: {self.images:,} validation images prove top-1 agreement >= "
                f"{100 * self.min_agreement:g}% only for a candidate with at most "
                f"{self.allowed} disagreement(s); one agreeing on {100 * self.room_at:g}% "
                f"needs {self.room:,} (--val-size {self.room}).")


def _each(s: Sizing) -> str:
    if s.compared > 1:
        return (f"{100 * s.level:.4g}% confidence for each of {s.compared} candidates, "
                "Bonferroni")
    return f"{100 * s.level:.4g}% confidence"


def sizing(gate: Gate, images: int) -> Sizing:
    """The figures of ``Sizing`` for ``images`` validation images under ``gate`` (its
    per-candidate level); ``room_at`` is halfway from the target to 100%."""
    floor = gate.min_agreement
    if floor is None:
        return Sizing(images, None, gate.level, gate.compared)
    room_at = round((1 + floor) / 2, 6)
    return Sizing(images, floor, gate.level, gate.compared,
                  needed=images_needed(floor, gate.level), room_at=room_at,
                  room=images_needed(floor, gate.level, agreement=room_at),
                  allowed=disagreements_allowed(images, floor, gate.level))


def with_val_size(ds: Dataset, n: int, seed: int = 0) -> Dataset:
    """``ds`` with ``n`` validation images, drawn stratified (seeded) from train and
    validation together; the rest is the train split. The test split is untouched.

    Example:
        >>> from edgeproof.datasets import load_dataset
        >>> with_val_size(load_dataset("digits"), 700).split_sizes
        {'train': 737, 'val': 700, 'test': 360}
    """
    from sklearn.model_selection import train_test_split

    x = np.concatenate([ds.x_train, ds.x_val])
    y = np.concatenate([ds.y_train, ds.y_val])
    classes = len(np.unique(y))
    if not classes <= n <= len(y) - classes:
        raise UsageError(f"--val-size must be between {classes} and {len(y) - classes} (train "
                         f"and validation hold {len(y):,} images, and each class needs one in "
                         f"train); got {n}.")
    try:
        train, val = train_test_split(np.arange(len(y)), test_size=n, stratify=y,
                                      random_state=seed)
    except ValueError as e:  # a class too small to split stratified
        raise UsageError(f"--val-size {n}: cannot split train + validation stratified ({e}).") \
            from None
    train, val = np.sort(train), np.sort(val)
    prov = {**ds.provenance, "val_size": n,
            "val_split": f"{n} of train + validation, stratified, seed {seed}"}
    return dataclasses.replace(ds, x_train=x[train], y_train=y[train], x_val=x[val],
                               y_val=y[val], provenance=prov)
