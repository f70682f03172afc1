"""Group a CSV or Parquet file of cases (no Spark, no Java): the ``casemix group-file`` command."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from casemix.grouping.compile import load_compiled
from casemix.grouping.core import group_frame

__all__ = ["FILE_COLUMNS", "OUTPUT_FILE_COLUMNS", "read_cases", "group_file"]

FILE_COLUMNS = ("case_id", "sex", "age_years", "age_days", "birth_weight_g", "dept", "los_days", "discharge_status",
                "principal_dx", "secondary_dxs", "procedures")
OUTPUT_FILE_COLUMNS = ("case_id", "mdc", "adrg", "drg", "status", "trace")
_NUMERIC = ("age_years", "age_days", "birth_weight_g", "los_days")


def read_cases(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file not found: {path}")
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    missing = [c for c in ("case_id", "sex", "age_years", "principal_dx") if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(FILE_COLUMNS)}")
    for col in _NUMERIC:
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col], errors="coerce")
    return frame


def group_file(scheme_dir: str | Path, input_path: str | Path, output_path: str | Path,
               cache_dir: str | Path | None = None) -> dict:
    cases = read_cases(input_path)
    result = group_frame(load_compiled(scheme_dir, cache_dir), cases)
    out = pd.concat([cases[["case_id"]], result[["mdc", "adrg", "drg", "status", "trace"]]], axis=1)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if output_path.suffix.lower() == ".parquet":
        out.to_parquet(output_path, index=False)
    else:
        out.to_csv(output_path, index=False, encoding="utf-8")
    return {"scheme": str(scheme_dir), "input": str(input_path), "output": str(output_path), "cases": len(out),
            "status": dict(Counter(out["status"]))}
