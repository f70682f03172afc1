"""Throughput benchmark: vectorised core vs per-record reference (not a test; not collected by pytest).

    cd /work/main && PYTHONPATH=lib taskset -c 0 python tests/grouping/bench_grouping.py [scheme] [n_rows] [--sets tiled,distinct]

Record sets (claim-like records from ``RecordGenerator(..., realistic=True)``):

* ``tiled``: 50k distinct records repeated to ``n_rows`` (cache-friendly: few distinct codes / traces);
* ``distinct``: ``n_rows`` distinct records (more realistic; generating 1M takes a minute or two).

Input forms timed: object columns (numpy arrays / lists per row, as pandas gets them from Arrow),
'|'-separated strings, Arrow-backed list<string> columns for the lists only, and the whole frame
Arrow-backed as the Spark job builds it (``Table.to_pandas(types_mapper=pd.ArrowDtype)``), once in
one call and once in 100k-row batches (the Spark job's batch size).  The reference is timed on 20k
distinct records; every line shows its ratio to it.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _grouping_records import RecordGenerator  # noqa: E402

from casemix.grouping import group_frame, group_record, load_compiled, load_scheme  # noqa: E402

BATCH = 100_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scheme", nargs="?", default="chs-drg-1.1")
    ap.add_argument("n_rows", nargs="?", type=int, default=1_000_000)
    ap.add_argument("--sets", default="tiled,distinct", help="comma-separated: tiled, distinct")
    args = ap.parse_args()
    sid, n = args.scheme, args.n_rows
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    root = Path(os.environ.get("CASEMIX_SCHEMES_DIR", Path(__file__).resolve().parents[2] / ".." / "shared" / "schemes"))
    scheme = load_scheme(root / sid)
    t = time.perf_counter()
    compiled = load_compiled(root / sid)
    print(f"{sid}: load_compiled {time.perf_counter() - t:.2f}s")
    base = RecordGenerator(scheme, seed=11).frame(50_000, realistic=True)
    print(f"records: {base.secondary_dxs.map(len).mean():.1f} secondaries, {base.procedures.map(len).mean():.1f} "
          f"procedures per record on average")
    group_frame(compiled, base.iloc[:1000])  # warm-up (lazily built look-up structures)
    recs = base.iloc[:20_000].to_dict("records")
    dt = _time(lambda: [group_record(scheme, r) for r in recs])
    ref = len(recs) / dt
    print(f"reference (per record, dicts prepared): {ref:,.0f} rec/s")
    out = group_frame(compiled, base)
    print("status mix:", out.status.value_counts().to_dict())
    for name in sets:
        if name == "tiled":
            df = pd.concat([base] * max(1, n // len(base)), ignore_index=True)
            label = f"{len(base):,} distinct x{max(1, n // len(base))}"
        elif name == "distinct":
            t = time.perf_counter()
            df = RecordGenerator(scheme, seed=12).frame(n, realistic=True)
            label = f"{n:,} distinct"
            print(f"(generated {n:,} distinct records in {time.perf_counter() - t:.0f}s)")
        else:
            raise SystemExit(f"unknown record set {name!r} (tiled, distinct)")
        _run(compiled, df, label, ref)
        del df


def _forms(df: pd.DataFrame) -> dict:
    forms = {"object lists": df}
    pipes = df.copy()
    for c in ("secondary_dxs", "procedures"):
        pipes[c] = ["|".join(v) for v in df[c]]
    forms["'|' strings"] = pipes
    lists = {c: [list(v) for v in df[c]] for c in ("secondary_dxs", "procedures")}
    arrow = df.copy()
    for c in ("secondary_dxs", "procedures"):
        arrow[c] = pd.Series(pd.array(lists[c], dtype=pd.ArrowDtype(pa.list_(pa.string()))), index=df.index)
    forms["arrow lists"] = arrow
    # what the Spark job hands over: every column Arrow-backed
    table = pa.Table.from_pandas(df.assign(**lists), preserve_index=False)
    forms["arrow table"] = table.to_pandas(types_mapper=pd.ArrowDtype)
    return forms


def _run(compiled, df: pd.DataFrame, label: str, ref: float) -> None:
    print(f"--- {label}: {len(df):,} rows")
    for name, frame in _forms(df).items():
        for trace in (True, False):
            best = min(_time(lambda: group_frame(compiled, frame, trace=trace)) for _ in range(3))
            rate = len(frame) / best
            print(f"core  {name:13s} trace={trace!s:5s}: {len(frame):,} rows in {best:.2f}s = {rate:,.0f} rec/s "
                  f"({rate / ref:,.0f}x reference)")
        if name == "arrow table":
            batches = [frame.iloc[i:i + BATCH] for i in range(0, len(frame), BATCH)]
            best = min(_time(lambda: [group_frame(compiled, b) for b in batches]) for _ in range(3))
            rate = len(frame) / best
            print(f"core  {'arrow table':13s} in {BATCH // 1000}k batches, trace=True : {rate:,.0f} rec/s "
                  f"({rate / ref:,.0f}x reference)")


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
