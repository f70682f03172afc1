"""Grouping claims with Spark: the same vectorised core, per Arrow batch, on the executors.

``group_claims(claims, schemes, policy, ...)`` adds the scheme chosen for each claim (by pooling
region and discharge date, :class:`casemix.policy.GroupingPolicy`) and groups every batch with
:func:`casemix.grouping.group_frame` inside ``mapInArrow``: the claim columns pass through as Arrow
arrays untouched, only the grouper's inputs are viewed as (Arrow-backed) pandas columns, and the
compiled scheme is loaded once per executor process (:func:`casemix.grouping.load_compiled` is memoised).
"""
from __future__ import annotations

import os
from datetime import datetime
from typing import Iterator, Mapping

import pandas as pd
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import to_arrow_schema

from casemix.policy import GroupingPolicy
from casemix.tables import CATALOGUE

__all__ = ["scheme_column", "group_claims", "GROUPER_INPUTS"]

#: claim columns the grouper reads (the file-grouping columns minus case_id)
GROUPER_INPUTS = ("sex", "age_years", "age_days", "birth_weight_g", "dept", "los_days", "discharge_status",
                  "principal_dx", "secondary_dxs", "procedures")
_STATUS_OUT = {"grouped": "grouped", "QY": "QY", "ungroupable": "ungroupable", "invalid": "invalid"}


def scheme_column(policy: GroupingPolicy, region: str = "region", discharge_date: str = "discharge_date") -> Column:
    """The scheme id of each claim: the covering rule with the latest ``effective_from``, else the default."""
    expr = None
    for rule in sorted(policy.rules, key=lambda r: r.effective_from, reverse=True):
        cond = F.col(region).isin(*rule.regions) & (F.col(discharge_date) >= F.lit(rule.effective_from))
        expr = F.when(cond, F.lit(rule.scheme)) if expr is None else expr.when(cond, F.lit(rule.scheme))
    default = F.lit(policy.default_scheme)
    return default if expr is None else expr.otherwise(default)


def _grouper(scheme_dirs: Mapping[str, str], versions: Mapping[str, str], run_id: str, grouped_at: datetime,
             in_names: list[str], out_schema: pa.Schema, ship: bool, cache_dir: str | None):
    def group_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from casemix.grouping import group_frame, load_compiled

        if ship:
            from pyspark import SparkFiles

            dirs = {s: os.path.join(SparkFiles.get(os.path.basename(d.rstrip("/"))), "") for s, d in scheme_dirs.items()}
        else:
            dirs = dict(scheme_dirs)
        stamp = pa.scalar(grouped_at, pa.timestamp("us", tz="UTC"))
        compiled: dict = {}  # once per task: load_compiled hashes the scheme files on every call
        for batch in batches:
            n = batch.num_rows
            inputs = pa.Table.from_batches([batch.select(list(GROUPER_INPUTS))]).to_pandas(types_mapper=pd.ArrowDtype)
            schemes = batch.column("scheme_id").to_numpy(zero_copy_only=False)
            result = None
            for scheme_id in pd.unique(schemes):
                rows = schemes == scheme_id
                if scheme_id not in compiled:
                    compiled[scheme_id] = load_compiled(dirs[scheme_id], cache_dir)
                part = group_frame(compiled[scheme_id], inputs[rows] if not rows.all() else inputs)
                part["scheme_model_version"] = versions.get(scheme_id)
                result = part if result is None else pd.concat([result, part])
            result = result.reindex(inputs.index)
            out = {name: batch.column(name) for name in in_names}
            out["scheme_model_version"] = pa.array(result["scheme_model_version"], pa.string())
            for col in ("mdc", "adrg", "drg", "cc_code", "invalid_reason"):
                out[col] = pa.array(result[col].astype(object).where(result[col].notna(), None), pa.string())
            out["group_status"] = pa.array(result["status"].map(_STATUS_OUT).astype(object), pa.string())
            out["has_mcc"] = pa.array(result["has_mcc"].astype(bool), pa.bool_())
            out["has_cc"] = pa.array(result["has_cc"].astype(bool), pa.bool_())
            out["trace"] = pa.array(result["trace"].fillna("").astype(object), pa.string())
            out["group_run_id"] = pa.array([run_id] * n, pa.string())
            out["grouped_at"] = pa.array([stamp] * n, pa.timestamp("us", tz="UTC"))
            yield pa.RecordBatch.from_arrays([out[f.name] for f in out_schema], schema=out_schema)

    return group_batches


def group_claims(claims: DataFrame, scheme_dirs: Mapping[str, str], policy: GroupingPolicy, *, run_id: str,
                 grouped_at: datetime, model_versions: Mapping[str, str] | None = None,
                 cache_dir: str | None = None) -> DataFrame:
    """``claims`` (the ``claims`` table's columns) grouped: the ``grouped_claims`` table's columns.

    ``scheme_dirs`` maps every scheme id the policy can choose to a local scheme folder (e.g. the
    registered model's artifact); on a cluster the folders are shipped to the executors with
    ``SparkContext.addFile``. ``cache_dir``: where executors keep compiled schemes (default
    ``$CASEMIX_CACHE_DIR`` or ``~/.cache/casemix``).
    """
    target = CATALOGUE["grouped_claims"]
    missing = set(policy.schemes) - set(scheme_dirs)
    if missing:
        raise ValueError(f"no scheme folder for {sorted(missing)} (policy schemes {policy.schemes})")
    spark = claims.sparkSession
    ship = not spark.sparkContext.master.startswith("local")
    if ship:
        for d in scheme_dirs.values():
            spark.sparkContext.addFile(d, recursive=True)
    claim_cols = [c for c in CATALOGUE["claims"].columns if c in target.columns]
    with_scheme = claims.select(*claim_cols, scheme_column(policy).alias("scheme_id"))
    in_names = [*claim_cols, "scheme_id"]
    out_schema = to_arrow_schema(target.schema, timezone="UTC", prefers_large_types=False)
    fn = _grouper(dict(scheme_dirs), dict(model_versions or {}), run_id, grouped_at, in_names, out_schema, ship,
                  cache_dir)
    return with_scheme.mapInArrow(fn, target.schema)
