"""Grouping run metrics, computed with Spark on the grouped claims."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

__all__ = ["grouping_metrics"]


def grouping_metrics(grouped: DataFrame) -> dict[str, float]:
    """Counts per status, 入组率 and the share of grouped cases per MDC.

    - ``records``: all grouped records; ``status.<status>``: records per status
    - ``grouping_rate`` (入组率) = grouped / (records − invalid): the share of readable records that
      got a DRG (QY and 0000 count against it); ``invalid`` records are a data-quality matter
    - ``mdc_share.<MDC>``: grouped records of the MDC / grouped records
    """
    by_status = {r["group_status"]: r["n"] for r in grouped.groupBy("group_status").agg(F.count("*").alias("n")).collect()}
    total = sum(by_status.values())
    ok = by_status.get("grouped", 0)
    readable = total - by_status.get("invalid", 0)
    out: dict[str, float] = {"records": float(total)}
    out.update({f"status.{s}": float(n) for s, n in sorted(by_status.items())})
    out["grouping_rate"] = ok / readable if readable else 0.0
    if ok:
        for r in grouped.filter("group_status = 'grouped'").groupBy("mdc").agg(F.count("*").alias("n")).collect():
            out[f"mdc_share.{r['mdc']}"] = r["n"] / ok
    return out
