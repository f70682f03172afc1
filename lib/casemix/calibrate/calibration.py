"""One calibration as DataFrame transformations: cases -> weights, hospital indicators, quality.

Everything is computed for all requested regions at once by Spark (group keys include the region;
the per-region finishing is one ``applyInPandas`` grouped by region), never by a Python loop over
regions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Sequence

from pyspark.sql import DataFrame

from casemix.calibrate.indicators import hospital_indicators
from casemix.calibrate.quality import calibration_quality
from casemix.calibrate.weights import group_statistics, region_weights, weights_table
from casemix.policy import CalibrationPolicy

__all__ = ["Calibration", "calibrate"]


@dataclass
class Calibration:
    """The lazy results of :func:`calibrate`. ``weights`` (internal statistics + weights, one row per
    region and group) feeds the three table frames: persist it when more than one of them is used."""

    weights: DataFrame
    relative_weights: DataFrame
    hospital_indicators: DataFrame
    quality: DataFrame


def calibrate(cases: DataFrame, spec: CalibrationPolicy, target_year: int, *, run_id: str,
              calibrated_at: datetime, regions: Optional[Sequence[str]] = None,
              previous: Optional[DataFrame] = None, true_costs: Optional[DataFrame] = None,
              persist: bool = False) -> Calibration:
    """Weights, hospital indicators and quality of ``regions`` (None: every region of ``cases``).

    ``cases``: :func:`~casemix.calibrate.cases.calibration_cases` of **all** regions (province-wide
    weights for low-volume groups use them, so a region's result does not depend on which other regions
    are calibrated with it). ``previous``: promoted weights to cap against (region, scheme_id, drg,
    previous_weight). ``true_costs``: the ``synthetic_true_costs`` table, for the quality metrics.
    ``persist``: cache the small weights frame (the three outputs then reuse it).
    """
    stats = group_statistics(cases, spec, regions, previous)
    weights = region_weights(stats, spec)
    if persist:
        weights = weights.persist()
    in_regions = cases if regions is None else cases.filter(cases["region"].isin(list(regions)))
    return Calibration(
        weights=weights,
        relative_weights=weights_table(weights, run_id=run_id, target_year=target_year, calibrated_at=calibrated_at),
        hospital_indicators=hospital_indicators(in_regions, weights, run_id=run_id, target_year=target_year,
                                                calibrated_at=calibrated_at),
        quality=calibration_quality(in_regions, weights, run_id=run_id, target_year=target_year,
                                    calibrated_at=calibrated_at, true_costs=true_costs,
                                    true_cost_min_cases=spec.true_cost_min_cases,
                                    low_volume_min_cases=spec.low_volume.min_cases),
    )
