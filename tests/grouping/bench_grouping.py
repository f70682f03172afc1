"""Throughput benchmark: vectorised core vs per-record reference (not a test; not collected by pytest).

    cd /work/main && PYTHONPATH=lib taskset -c 0 python tests/grouping/bench_grouping.py [scheme] [n_rows]

Builds 50k distinct claim-like records (``RecordGenerator(..., realistic=True)``), tiles them
to ``n_rows`` for the vectorised core and times the reference on 20k distinct records.
Input forms timed: object columns (numpy arrays / lists per row, as pandas gets them from
Arrow), '|'-separated strings, and Arrow-backed list<string> columns.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _grouping_records import RecordGenerator  # noqa: E402

from casemix.grouping import group_frame, group_record, load_compiled, load_scheme  # noqa: E402


def main() -> None:
    sid = sys.argv[1] if len(sys.argv) > 1 else "chs-drg-1.1"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    root = Path(os.environ.get("CASEMIX_SCHEMES_DIR", Path(__file__).resolve().parents[2] / ".." / "shared" / "schemes"))
    scheme = load_scheme(root / sid)
    t = time.perf_counter()
    compiled = load_compiled(root / sid)
    print(f"{sid}: load_compiled {time.perf_counter() - t:.2f}s")
    base = RecordGenerator(scheme, seed=11).frame(50_000, realistic=True)
    print(f"records: {base.secondary_dxs.map(len).mean():.1f} secondaries, {base.procedures.map(len).mean():.1f} "
          f"procedures per record on average")
    df = pd.concat([base] * max(1, n // len(base)), ignore_index=True)
    forms = {"object lists": df}
    pipes = df.copy()
    for c in ("secondary_dxs", "procedures"):
        pipes[c] = ["|".join(v) for v in base[c]] * (len(df) // len(base))
    forms["'|' strings"] = pipes
    arrow = df.copy()
    for c in ("secondary_dxs", "procedures"):
        arrow[c] = pd.Series(pd.array([list(v) for v in base[c]] * (len(df) // len(base)),
                                      dtype=pd.ArrowDtype(pa.list_(pa.string()))))
    forms["arrow lists"] = arrow
    group_frame(compiled, df.iloc[:1000])
    for name, frame in forms.items():
        for trace in (True, False):
            best = min(_time(lambda: group_frame(compiled, frame, trace=trace)) for _ in range(3))
            print(f"core  {name:13s} trace={trace!s:5s}: {len(frame):,} rows in {best:.2f}s = {len(frame) / best:,.0f} rec/s")
    out = group_frame(compiled, base)
    print("status mix:", out.status.value_counts().to_dict())
    recs = base.iloc[:20_000].to_dict("records")
    dt = _time(lambda: [group_record(scheme, r) for r in recs])
    print(f"reference (per record, dicts prepared): {len(recs) / dt:,.0f} rec/s")


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
