"""Relative-weight calibration (相对权重测算) per pooling region, its tracking and promotion.

Data flow: ``grouped_claims`` (data years) → :func:`calibration_cases` → :func:`calibrate` (weights,
hospital indicators, quality; all regions at once in Spark) → tables ``relative_weights``,
``hospital_indicators``, ``calibration_quality`` (partition = MLflow run id) → a data scientist
compares runs in MLflow and promotes one (:func:`promote_run` → ``promoted_weights``) → scoring reads
:func:`promoted_weights`. :func:`run_calibration` does the whole run (with run reuse) for the
``calibrate-weights`` job and the notebook.

Formulas (defaults from ``conf/policy``; details in each module's docstring)
-------------------------------------------------------------------------
Cases (:mod:`.cases`): grouped_claims rows discharged in the data years = the ``window_years`` years
ending the year before the target year (2025 → 2022-2024); usable = status ``grouped`` and not excluded
(LOS > 60 days or total cost < 5 yuan). Cost c_i = total_cost × inflation[year] (double). Year weight
w_i = weight of the case's year / Σ weights (2:3:5 → 0.2/0.3/0.5): each case counts with its year's
weight in every mean and sum below (case-weighted, not a weighted mean of yearly means).

Trimming (:mod:`.trimming`), per region + scheme + DRG on the unweighted costs of all data years:
IQR keeps [Q1 − 1.5·IQR, Q3 + 1.5·IQR] (linear-interpolated quartiles); percentile keeps [P1, P99]
(inverted-CDF percentiles); log_sd keeps exp(mean ± 3·SD) of ln cost (sample SD).

Weights (:mod:`.weights`), per region r and group g, over the kept cases K_g:
m_g = Σ_{K_g} w c / Σ_{K_g} w; all-case mean M_r = Σ_g Σ_{K_g} w c / Σ_g Σ_{K_g} w (the year-weighted
mean of all kept cases of the region); RW_g = m_g / M_r; base points = RW × 100;
CV_g = sqrt(Σ_{K_g} w (c − m_g)² / Σ_{K_g} w) / m_g; RIV_r = 1 − SS_within / SS_total on the kept cases
with the same weights. Low volume (n_g < 5 usable cases before trimming): borrow RW^P_g (the same
computation over all regions' cases of the scheme) or shrink: λ RW_g + (1 − λ) RW^P_g, λ = n/(n + k).
Tilts: RW·k_g rescaled by s = Σ ñ RW / Σ ñ k RW (ñ_g = Σ_i w_i, the year-weighted cases), so
Σ RW_adj·ñ = Σ RW·ñ. Cap: clamp to (1 ± c) × the region's promoted weight of its latest earlier target year.

Indicators (:mod:`.indicators`), per hospital and data year, on untrimmed usable cases: CMI = Σ RW·n / Σ n;
cost (time) index = Σ_g n_hg (hospital mean cost (LOS) of g / region mean of g, same year) / Σ_g n_hg.

Quality (:mod:`.quality`): 入组率 = grouped / (all − excluded); trimmed share; share of groups with
CV ≥ 1; RIV; low-volume groups; error against ``synthetic_true_costs`` when that table exists.

Money columns are decimals rounded to the fen; means and weights are computed in double (they are ratios).
"""
from __future__ import annotations

from casemix.calibrate.calibration import Calibration, calibrate
from casemix.calibrate.cases import CASE_COLUMNS, calibration_cases, usable_cases
from casemix.calibrate.errors import (
    CalibrationError,
    CalibrationSpecError,
    NoCasesError,
    NoPromotedWeightsError,
    PromotionError,
)
from casemix.calibrate.indicators import hospital_indicators
from casemix.calibrate.promotion import EXPERIMENT, promote_run, promoted_weights, promotion_tag, promotions
from casemix.calibrate.quality import calibration_quality, case_counts, true_cost_errors
from casemix.calibrate.trimming import mark_kept, trimming_bounds
from casemix.calibrate.weights import finish_region, group_statistics, province_weights, region_weights, weights_table
from casemix.calibrate.workflow import (
    METHOD_VERSION,
    CalibrationRun,
    calibration_hash,
    override_spec,
    run_calibration,
    validate_spec,
)
from casemix.policy import CalibrationPolicy

#: the calibration spec is the policy section ``calibration`` (a pydantic model)
CalibrationSpec = CalibrationPolicy

__all__ = [
    "CalibrationSpec",
    "CalibrationPolicy",
    "Calibration",
    "CalibrationRun",
    "calibrate",
    "calibration_cases",
    "usable_cases",
    "CASE_COLUMNS",
    "trimming_bounds",
    "mark_kept",
    "group_statistics",
    "province_weights",
    "region_weights",
    "finish_region",
    "weights_table",
    "hospital_indicators",
    "calibration_quality",
    "case_counts",
    "true_cost_errors",
    "run_calibration",
    "calibration_hash",
    "override_spec",
    "validate_spec",
    "promote_run",
    "promoted_weights",
    "promotions",
    "promotion_tag",
    "EXPERIMENT",
    "METHOD_VERSION",
    "CalibrationError",
    "CalibrationSpecError",
    "NoCasesError",
    "PromotionError",
    "NoPromotedWeightsError",
    "load_calibration_spec",
]


def load_calibration_spec(settings) -> CalibrationPolicy:
    """The ``calibration`` section of the configured policy file."""
    from casemix.policy import load_policy

    return load_policy(settings).calibration
