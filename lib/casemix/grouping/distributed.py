"""Grouping claims with Spark: the same vectorised core, per Arrow batch, on the executors.

``group_claims(claims, schemes, policy, ...)`` adds the scheme chosen for each claim (by pooling
region and discharge date, :class:`casemix.policy.GroupingPolicy`) and groups every batch with
:func:`casemix.grouping.group_arrow` inside ``mapInArrow``: the claim columns pass through as Arrow
arrays untouched, the grouper reads its inputs as Arrow arrays, the group columns are Arrow ``take``s
from each scheme's texts (:func:`group_batch`, a pure function of Arrow data) and the constant columns
are repeated Arrow scalars. The compiled schemes are loaded once per task.

This is the DataFrame path of the grouping job (any storage engine; the default with delta-spark).
With the delta-rs engine the job takes the file-wise path, :mod:`casemix.grouping.direct`, which uses
the same :class:`BatchGrouper` per batch but keeps the rows out of the JVM (11-12x faster at 10 M claims).

Why ``mapInArrow`` over every column and not a scalar Arrow UDF over the grouper's inputs only (which
Spark joins back to the buffered input rows by position): measured on 1 M claims, local[2], the UDF's
row queue and join cost more JVM time than converting the ~20 pass-through columns to Arrow and back
(bench/RESULTS.md, grouping section).
"""
from __future__ import annotations

import os
from datetime import datetime
from typing import Callable, Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from casemix.policy import GroupingPolicy
from casemix.tables import CATALOGUE

__all__ = ["scheme_column", "scheme_ids", "group_claims", "group_batch", "BatchGrouper", "passed_columns",
           "GROUPER_INPUTS", "RESULT_COLUMNS"]

#: claim columns the grouper reads (the file-grouping columns minus case_id)
GROUPER_INPUTS = ("sex", "age_years", "age_days", "birth_weight_g", "dept", "los_days", "discharge_status",
                  "principal_dx", "secondary_dxs", "procedures")
#: ``grouped_claims`` column <- ``group_frame`` output column, for the columns the Python step returns
RESULT_COLUMNS = {"mdc": "mdc", "adrg": "adrg", "drg": "drg", "group_status": "status", "has_mcc": "has_mcc",
                  "has_cc": "has_cc", "cc_code": "cc_code", "invalid_reason": "invalid_reason", "trace": "trace"}


def passed_columns() -> list[str]:
    """The ``claims`` columns ``grouped_claims`` carries over unchanged."""
    target = CATALOGUE["grouped_claims"].columns
    return [c for c in CATALOGUE["claims"].columns if c in target]


def scheme_column(policy: GroupingPolicy, region: str = "region", discharge_date: str = "discharge_date") -> Column:
    """The scheme id of each claim: the covering rule with the latest ``effective_from``, else the default."""
    expr = None
    for rule in sorted(policy.rules, key=lambda r: r.effective_from, reverse=True):
        cond = F.col(region).isin(*rule.regions) & (F.col(discharge_date) >= F.lit(rule.effective_from))
        expr = F.when(cond, F.lit(rule.scheme)) if expr is None else expr.when(cond, F.lit(rule.scheme))
    default = F.lit(policy.default_scheme)
    return default if expr is None else expr.otherwise(default)


def scheme_ids(policy: GroupingPolicy, region: pa.Array, discharge_date: pa.Array) -> pa.Array:
    """:func:`scheme_column` on Arrow arrays: the same rule, the same winner when rules tie."""
    out = pa.repeat(pa.scalar(policy.default_scheme, pa.string()), len(region))
    ordered = sorted(policy.rules, key=lambda r: r.effective_from, reverse=True)
    for rule in reversed(ordered):  # the first rule of ``ordered`` is applied last, so it wins
        cond = pc.and_(pc.is_in(region, pa.array(list(rule.regions), pa.string())),
                       pc.greater_equal(discharge_date, pa.scalar(rule.effective_from, pa.date32())))
        out = pc.if_else(pc.fill_null(cond, False), pa.scalar(rule.scheme, pa.string()), out)
    return out


def group_batch(batch: pa.RecordBatch, compiled_for: Callable[[str], object]) -> dict[str, pa.Array]:
    """Group one batch of claims (:data:`GROUPER_INPUTS` and ``scheme_id``) with the compiled scheme
    ``compiled_for(scheme_id)`` of each row; returns the :data:`RESULT_COLUMNS` as Arrow arrays, row
    for row (string columns null where the grouper gives none; ``trace`` "" instead of null)."""
    from casemix.grouping import group_arrow

    if not batch.num_rows:
        return {name: pa.array([], pa.bool_() if name in ("has_mcc", "has_cc") else pa.string())
                for name in RESULT_COLUMNS}
    inputs = batch.select(list(GROUPER_INPUTS))
    schemes = batch.column("scheme_id")
    distinct = pc.unique(schemes).to_pylist()
    if len(distinct) == 1:
        res = group_arrow(compiled_for(distinct[0]), inputs)
    else:  # several schemes in the batch: group each scheme's rows, put the results back in row order
        ids = schemes.to_numpy(zero_copy_only=False)
        rows = [np.flatnonzero(ids == scheme_id) for scheme_id in distinct]
        parts = [group_arrow(compiled_for(s), inputs.take(pa.array(r))) for s, r in zip(distinct, rows)]
        back = np.empty(batch.num_rows, dtype=np.int64)
        back[np.concatenate(rows)] = np.arange(batch.num_rows)
        res = pa.concat_tables(parts).take(pa.array(back))
    out = {}
    for name, src in RESULT_COLUMNS.items():
        arr = res.column(src).combine_chunks()
        out[name] = arr.fill_null("") if name == "trace" and arr.null_count else arr
    return out


def scheme_dirs_here(scheme_dirs: Mapping[str, str], ship: bool) -> dict[str, str]:
    """On an executor: the scheme folders as shipped with ``SparkContext.addFile`` (``ship``), else as given."""
    if not ship:
        return dict(scheme_dirs)
    from pyspark import SparkFiles

    return {s: os.path.join(SparkFiles.get(os.path.basename(d.rstrip("/"))), "") for s, d in scheme_dirs.items()}


def check_scheme_dirs(policy: GroupingPolicy, scheme_dirs: Mapping[str, str]) -> None:
    """Every scheme the policy can choose must have a folder (else ValueError naming the missing ones)."""
    missing = set(policy.schemes) - set(scheme_dirs)
    if missing:
        raise ValueError(f"no scheme folder for {sorted(missing)} (policy schemes {policy.schemes})")


def ship_schemes(spark, scheme_dirs: Mapping[str, str]) -> bool:
    """Ship the scheme folders to the executors unless Spark runs locally; returns whether it did."""
    ship = not spark.sparkContext.master.startswith("local")
    if ship:
        for d in scheme_dirs.values():
            spark.sparkContext.addFile(d, recursive=True)
    return ship


class BatchGrouper:
    """Turns a batch of claims into a batch of ``grouped_claims`` rows: the claim columns untouched,
    the group columns from :func:`group_batch`, the model version of each row's scheme and the run's
    constants (:meth:`added`, from the grouper's inputs and ``scheme_id`` only; :meth:`assemble` puts
    them beside the claim columns). Compiled schemes are loaded on first use (once per task)."""

    def __init__(self, scheme_dirs: Mapping[str, str], versions: Mapping[str, str], run_id: str,
                 grouped_at: datetime, out_schema: pa.Schema, cache_dir: str | None):
        self.dirs, self.versions, self.out_schema = dict(scheme_dirs), dict(versions), out_schema
        self.cache_dir = cache_dir
        self.run = pa.scalar(run_id, pa.string())
        self.stamp = pa.scalar(grouped_at, pa.timestamp("us", tz="UTC"))
        self.compiled: dict = {}  # load_compiled is memoised, but hashes the scheme files per call

    def compiled_for(self, scheme_id: str):
        if scheme_id not in self.compiled:
            from casemix.grouping import load_compiled

            self.compiled[scheme_id] = load_compiled(self.dirs[scheme_id], self.cache_dir)
        return self.compiled[scheme_id]

    def added(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        """The columns ``grouped_claims`` adds to the claim columns, for a batch that holds (at least)
        :data:`GROUPER_INPUTS` and ``scheme_id``."""
        n = batch.num_rows
        out = group_batch(batch, self.compiled_for)
        out["scheme_id"] = batch.column("scheme_id")
        schemes = pc.dictionary_encode(out["scheme_id"])
        out["scheme_model_version"] = pa.array([self.versions.get(s) for s in schemes.dictionary.to_pylist()],
                                               pa.string()).take(schemes.indices)
        out["group_run_id"] = pa.repeat(self.run, n)
        out["grouped_at"] = pa.repeat(self.stamp, n)
        return out

    def assemble(self, claims: pa.RecordBatch, added: Mapping[str, pa.Array], *,
                 dictionaries: bool = False) -> pa.RecordBatch:
        """The ``grouped_claims`` batch: ``added`` (row for row with ``claims``) and the claim columns.
        (``RecordBatch.from_arrays`` does not compare the arrays' types with the schema's: done here,
        but for the nullability of list items, which Spark's Arrow conversion does not keep.) With
        ``dictionaries``, a column may also be a dictionary array of the schema's type (the batch's
        schema then says so): for a Parquet writer, not for Spark."""
        arrays = [added[f.name] if f.name in added else claims.column(f.name) for f in self.out_schema]
        fields = [f.with_type(a.type) if dictionaries and _decoded_type(a.type) == f.type else f
                  for f, a in zip(self.out_schema, arrays)]
        wrong = [(f.name, a.type) for f, a in zip(fields, arrays) if not _same_type(a.type, f.type)]
        if wrong:
            raise TypeError(f"grouped_claims columns of the wrong type (column, type): {wrong}")
        return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields, metadata=self.out_schema.metadata))

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return self.assemble(batch, self.added(batch))


def _decoded_type(t: pa.DataType) -> pa.DataType:
    """``t`` with dictionaries (also list items) replaced by their value type."""
    if pa.types.is_dictionary(t):
        return t.value_type
    return pa.list_(t.value_field.with_type(_decoded_type(t.value_type))) if pa.types.is_list(t) else t


def _same_type(a: pa.DataType, b: pa.DataType) -> bool:
    """Equal types, list item nullability aside."""
    if pa.types.is_list(a) and pa.types.is_list(b):
        return _same_type(a.value_type, b.value_type)
    return a == b


def _grouper(scheme_dirs: Mapping[str, str], versions: Mapping[str, str], run_id: str, grouped_at: datetime,
             out_schema: pa.Schema, ship: bool, cache_dir: str | None):
    def group_batches(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        grouper = BatchGrouper(scheme_dirs_here(scheme_dirs, ship), versions, run_id, grouped_at, out_schema,
                               cache_dir)
        for batch in batches:
            yield grouper(batch)

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
    check_scheme_dirs(policy, scheme_dirs)
    ship = ship_schemes(claims.sparkSession, scheme_dirs)
    claim_cols = passed_columns()
    with_scheme = claims.select(*claim_cols, scheme_column(policy).alias("scheme_id"))
    fn = _grouper(dict(scheme_dirs), dict(model_versions or {}), run_id, grouped_at, target.arrow_schema, ship,
                  cache_dir)
    return with_scheme.mapInArrow(fn, target.schema)
