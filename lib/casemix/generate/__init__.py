"""Synthetic province generator: believable raw drops of a Chinese province's medical insurance claims.

Real claims are confidential, so casemix generates a province to develop and test against: insured
people, hospitals, inpatient settlement lists (医保结算清单) grouped by a real DRG scheme, outpatient
visits, source-format quirks and deliberately bad records, plus the hidden truth (the true mean cost of
every DRG) a weight calibration should recover. Three layers, as in dbldatagen:

1. what to generate: :class:`GeneratorSpec` (validated, ``extra="forbid"``) and the world
   :class:`Province` (``conf/province.yaml``, :func:`load_province`);
2. the resolved plan: :func:`build_plan` (driver side, small: scheme-derived case templates and code
   pools, hospitals, drops; see :mod:`casemix.generate.catalogue` and :mod:`casemix.generate.plan`);
3. Spark: :func:`generate_inpatient` / :func:`generate_outpatient` (``spark.range`` + one vectorised
   ``mapInArrow``; every random quantity is a counter-based hash of (seed, id, field), see
   :mod:`casemix.generate.rng`), :func:`write_drops` / :func:`write_outpatient_drops`
   (:mod:`casemix.generate.drops`), :func:`true_costs` (:mod:`casemix.generate.truth`).

:func:`generate_province` does all of it in one call::

    from casemix.generate import GeneratorSpec, build_plan, generate_province, load_province

    plan = build_plan(GeneratorSpec(seed=7, n_cases=100_000), load_province(), settings.schemes_path)
    result = generate_province(spark, plan, "data/drops", run_id="demo")
    result.summary["defects"]          # planted defects per kind
    result.truth                       # DataFrame in the synthetic_true_costs schema

Spark is always passed in; library code never creates a session.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from casemix.generate.drops import (DEFECTS_FOLDER, DropsResult, csv_header, drop_summary, write_drops,
                                    write_outpatient_drops)
from casemix.generate.inpatient import META_COLUMNS, RAW_NAMES, generate_inpatient, inpatient_schema
from casemix.generate.outpatient import OUTPATIENT_COLUMNS, generate_outpatient
from casemix.generate.plan import GenerationPlan, build_plan
from casemix.generate.province import Province, load_province
from casemix.generate.spec import GeneratorSpec, SpecError
from casemix.generate.truth import drg_case_counts, reference_multipliers, true_costs

__all__ = [
    "GeneratorSpec",
    "SpecError",
    "Province",
    "load_province",
    "GenerationPlan",
    "build_plan",
    "generate_inpatient",
    "generate_outpatient",
    "write_drops",
    "write_outpatient_drops",
    "drop_summary",
    "DropsResult",
    "true_costs",
    "drg_case_counts",
    "reference_multipliers",
    "generate_province",
    "GenerationResult",
    "inpatient_schema",
    "RAW_NAMES",
    "META_COLUMNS",
    "OUTPATIENT_COLUMNS",
    "DEFECTS_FOLDER",
    "csv_header",
]


@dataclass
class GenerationResult:
    """What :func:`generate_province` wrote: paths, counts, and the truth rows (not yet stored)."""

    paths: dict[str, str]
    summary: dict[str, Any]
    truth: DataFrame


def generate_province(spark: SparkSession, plan: GenerationPlan, root: str, *, run_id: str,
                      outpatient: bool = True) -> GenerationResult:
    """Generate the plan's inpatient drops (+ ``_defects``) and outpatient drops under ``root`` and
    compute the true costs of its DRGs (weighted by the clean grouped cases written). Only aggregated
    counts reach the driver."""
    drops = write_drops(spark, plan, root)
    paths, summary = dict(drops.paths), dict(drops.summary)
    truth = true_costs(spark, plan, run_id=run_id, counts=drops.drg_counts)
    summary["outpatient_visits"] = 0
    if outpatient and plan.spec.n_visits:
        paths.update(write_outpatient_drops(spark, plan, root))
        summary["outpatient_visits"] = plan.spec.n_visits
    summary["scheme_id"] = plan.catalogue.scheme_id
    summary["catalogue"] = {k: v for k, v in plan.catalogue.stats.items() if k != "rules_without_templates"}
    return GenerationResult(paths=paths, summary=summary, truth=truth)
