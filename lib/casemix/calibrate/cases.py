"""The cases a calibration uses: the data years' grouped claims with year weight, inflated cost and
exclusion flag.

- data years: ``spec.data_years(target_year)`` = the ``window_years`` years ending the year before the
  target year (target 2025 -> 2022, 2023, 2024); a case's year is the year of its ``discharge_month``
  (the table's partition column, so only the data years' partitions are read);
- year weight ``w_i``: the spec's weight of the case's year, normalised so the weights of the data
  years sum to 1 (2:3:5 -> 0.2, 0.3, 0.5). Every mean, sum of squares and "weighted case count" of the
  calibration weights each case by ``w_i`` (see :mod:`casemix.calibrate`);
- cost ``c_i = total_cost_i × inflation[year]`` in double (``total_cost`` is a decimal; means and ratios
  are computed in double, money columns are rounded back to the fen when written);
- ``excluded``: LOS > ``exclusions.max_los_days`` or total cost < ``exclusions.min_cost`` (raw cost).
"""
from __future__ import annotations

from typing import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from casemix.calibrate.errors import CalibrationSpecError
from casemix.policy import CalibrationPolicy

__all__ = ["calibration_cases", "usable_cases", "CASE_COLUMNS", "INPUT_COLUMNS", "STATUS_GROUPED"]

STATUS_GROUPED = "grouped"
#: grouped_claims columns the calibration reads
INPUT_COLUMNS = ("region", "hospital_id", "discharge_month", "los_days", "total_cost", "scheme_id", "mdc",
                 "adrg", "drg", "group_status")
#: columns of :func:`calibration_cases`
CASE_COLUMNS = ("region", "hospital_id", "scheme_id", "mdc", "adrg", "drg", "group_status", "data_year",
                "year_weight", "cost", "los_days", "excluded")


def _by_year(year: Column, values: dict[int, float], default: float | None) -> Column:
    expr = None
    for y, v in sorted(values.items()):
        expr = (F.when(year == y, F.lit(float(v))) if expr is None else expr.when(year == y, F.lit(float(v))))
    if expr is None:
        return F.lit(default).cast("double")
    return expr.otherwise(F.lit(default).cast("double"))


def check_inflation(spec: CalibrationPolicy, target_year: int) -> None:
    """An inflation table, when given, must cover every data year (a missing year is most likely a typo)."""
    if not spec.inflation:
        return
    missing = [y for y in spec.data_years(target_year) if y not in spec.inflation]
    if missing:
        raise CalibrationSpecError(
            f"calibration.inflation has no factor for data year(s) {missing} of target year {target_year}: "
            f"add them (a factor that brings that year's costs to {target_year} prices) or remove "
            "calibration.inflation to use no inflation"
        )


def calibration_cases(grouped: DataFrame, spec: CalibrationPolicy, target_year: int,
                      regions: Sequence[str] | None = None, *, keep: Sequence[str] = ()) -> DataFrame:
    """``grouped`` (``grouped_claims`` columns, at least :data:`INPUT_COLUMNS`) reduced to the data years
    (and ``regions`` when given), with the columns :data:`CASE_COLUMNS` (module docstring) and the
    input columns named in ``keep``."""
    check_inflation(spec, target_year)
    years = spec.data_years(target_year)
    weights = spec.normalised_year_weights(target_year)
    month = F.col("discharge_month")
    in_window = (month >= F.lit(f"{years[0]:04d}-01")) & (month <= F.lit(f"{years[-1]:04d}-12"))
    out = grouped.filter(in_window)
    if regions is not None:
        out = out.filter(F.col("region").isin(list(regions)))
    year = F.substring(month, 1, 4).cast("int")
    factor = _by_year(year, spec.inflation, 1.0) if spec.inflation else F.lit(1.0)
    excluded = ((F.col("los_days") > F.lit(spec.exclusions.max_los_days))
                | (F.col("total_cost") < F.lit(spec.exclusions.min_cost)))
    return out.select(
        "region", "hospital_id", "scheme_id", "mdc", "adrg", "drg", "group_status",
        year.alias("data_year"),
        _by_year(year, weights, None).alias("year_weight"),
        (F.col("total_cost").cast("double") * factor).alias("cost"),
        F.col("los_days").cast("int").alias("los_days"),
        F.coalesce(excluded, F.lit(True)).alias("excluded"),
        *keep,
    )


def usable_cases(cases: DataFrame) -> DataFrame:
    """The cases weights are computed from: grouped (a DRG, not QY / 0000 / invalid) and not excluded."""
    return cases.filter((F.col("group_status") == STATUS_GROUPED) & ~F.col("excluded"))
