"""Vectorised calendar arithmetic on day numbers (days since 1970-01-01, int64)."""
from __future__ import annotations

import numpy as np

__all__ = ["ymd", "from_ymd", "completed_years", "month_index", "days_in_month"]


def ymd(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Day numbers -> (year, month 1-12, day 1-31) as int64 arrays."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    months = d.astype("datetime64[M]")
    y = months.astype("datetime64[Y]").astype(np.int64) + 1970
    m = months.astype(np.int64) % 12 + 1
    day = (d - months.astype("datetime64[D]")).astype(np.int64) + 1
    return y, m, day


def from_ymd(y, m, d) -> np.ndarray:
    """(year, month, day) -> day numbers (day may overflow the month: it simply counts on)."""
    y = np.asarray(y, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    months = ((y - 1970) * 12 + (m - 1)).astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64) + np.asarray(d, dtype=np.int64) - 1


def completed_years(birth: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Age in completed years at day ``at`` of people born on day ``birth`` (broadcasting)."""
    by, bm, bd = ymd(birth)
    ay, am, ad = ymd(at)
    before_birthday = (am < bm) | ((am == bm) & (ad < bd))
    return ay - by - before_birthday.astype(np.int64)


def month_index(year: int, month: int) -> int:
    return year * 12 + month - 1


def days_in_month(year: int, month: int) -> int:
    nxt = from_ymd(year + (month == 12), 1 if month == 12 else month + 1, 1)
    return int(nxt - from_ymd(year, month, 1))
