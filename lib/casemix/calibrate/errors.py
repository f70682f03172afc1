"""Typed errors of the calibration workflow; every message says what to do."""
from __future__ import annotations

__all__ = [
    "CalibrationError",
    "CalibrationSpecError",
    "NoCasesError",
    "PromotionError",
    "NoPromotedWeightsError",
]


class CalibrationError(RuntimeError):
    """A calibration (or promotion) cannot go on; the message says why and what to do."""


class CalibrationSpecError(CalibrationError, ValueError):
    """The calibration spec does not fit the data or the target year (e.g. a data year without an
    inflation index)."""


class NoCasesError(CalibrationError):
    """The input holds no usable case for a requested region and the data years."""


class PromotionError(CalibrationError):
    """A run cannot be promoted (unknown, unfinished, or without weights for the region)."""


class NoPromotedWeightsError(CalibrationError, LookupError):
    """No promoted weights exist for a region and target year."""
