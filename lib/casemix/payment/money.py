"""Money arithmetic: exact decimals, one rounding to the fen, and the rule that assigns rounding remainders.

Every amount the settlement pays is computed as an exact :class:`~decimal.Decimal` and rounded once:

- :func:`to_fen` rounds half up to 0.01 yuan (the only rounding mode used for money);
- :func:`allocate` splits an amount that is already in fen over weights (points, shares) so that the parts
  are in fen and sum to the amount exactly: each part is first rounded down to the fen, then the fens
  still missing go one each to the parts with the largest remainders (ties: the earlier key in sort
  order). This is the largest-remainder (Hamilton) rule; a negative amount is split as its absolute value
  and negated, so an overrun is shared by the same rule as a surplus.
"""
from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext
from typing import Sequence

__all__ = ["FEN", "to_fen", "allocate", "exact", "AllocationError"]

FEN = Decimal("0.01")


class AllocationError(ValueError):
    """An amount cannot be split: all weights are zero (or negative weights were given)."""


def exact(value) -> Decimal:
    """A Decimal from a Decimal, an int or a str (never a float: floats are not money)."""
    if isinstance(value, float):
        raise TypeError(f"money must not be a float ({value!r}): pass a Decimal or a string")
    return value if isinstance(value, Decimal) else Decimal(value)


def to_fen(value: Decimal) -> Decimal:
    return exact(value).quantize(FEN, rounding=ROUND_HALF_UP)


def allocate(amount: Decimal, weights: Sequence[Decimal], keys: Sequence[str] | None = None) -> list[Decimal]:
    """Split ``amount`` (whole fen) in proportion to ``weights`` into fen amounts summing to it exactly
    (module docstring). ``keys`` (default: positions) break ties between equal remainders."""
    amount = exact(amount)
    if amount != to_fen(amount):
        raise AllocationError(f"allocate: {amount} is not a whole number of fen")
    weights = [exact(w) for w in weights]
    if any(w < 0 for w in weights):
        raise AllocationError("allocate: weights must be >= 0")
    if not weights:
        if amount:
            raise AllocationError(f"allocate: nothing to split {amount} over")
        return []
    total = sum(weights)
    if total == 0:
        if amount == 0:
            return [Decimal("0.00")] * len(weights)
        raise AllocationError(f"allocate: cannot split {amount} over weights that are all zero")
    sign = -1 if amount < 0 else 1
    cents = abs(amount) / FEN
    with localcontext() as ctx:
        ctx.prec = 60
        raw = [cents * w / total for w in weights]
    floors = [r.to_integral_value(rounding=ROUND_DOWN) for r in raw]
    missing = int(cents - sum(floors))
    order = sorted(range(len(weights)), key=lambda i: (-(raw[i] - floors[i]), keys[i] if keys else i))
    for i in order[:missing]:
        floors[i] += 1
    return [sign * f * FEN for f in floors]
