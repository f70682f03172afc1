"""The settlement report (模拟运行报告): one self-contained HTML file with tables and plots.

Built from the settlement's small outputs (region and hospital aggregates, never cases): per region the
method, budget, point value and surplus/overrun; per hospital bar charts of the largest gains and losses
of the DRG point method and the rate method against fee-for-service; the distribution of the hospitals'
relative gains/losses; the monthly point value trend per region. Plots are PNG embedded as base64, so
the file can be mailed or archived as it is.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Sequence

import pandas as pd

__all__ = ["write_report"]


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    _plt().close(fig)
    return f'<img alt="" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _by_hospital(sim: pd.DataFrame) -> pd.DataFrame:
    cols = ["ffs_fund", "point_fund", "rate_fund"]
    per = sim.groupby(["region", "hospital_id"], as_index=False)[cols].sum()
    for c in cols:
        per[c] = per[c].astype(float)
    per["point_minus_ffs"] = per["point_fund"] - per["ffs_fund"]
    per["rate_minus_ffs"] = per["rate_fund"] - per["ffs_fund"]
    return per


def _bars(per: pd.DataFrame, column: str, title: str, n: int = 15):
    plt = _plt()
    ranked = per.sort_values(column)
    shown = pd.concat([ranked.head(n), ranked.tail(n)]).drop_duplicates(["region", "hospital_id"])
    fig, ax = plt.subplots(figsize=(8, max(3, 0.22 * len(shown) + 1)))
    colours = ["#c0392b" if v < 0 else "#27ae60" for v in shown[column]]
    y = range(len(shown))  # (positions, labelled: see _trend)
    ax.barh(y, shown[column] / 10_000, color=colours)
    ax.set_yticks(y, shown["hospital_id"].tolist())
    ax.set_xlabel("difference to fee-for-service, 10k yuan")
    ax.set_title(title)
    ax.tick_params(axis="y", labelsize=6)
    fig.tight_layout()
    return fig


def _distribution(per: pd.DataFrame):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.5))
    base = per["ffs_fund"].where(per["ffs_fund"] > 0)
    for column, label in (("point_minus_ffs", "point method"), ("rate_minus_ffs", "rate method")):
        rel = (per[column] / base).dropna() * 100
        ax.hist(rel.clip(-100, 100), bins=40, alpha=0.6, label=label)
    ax.set_xlabel("hospital's gain (+) / loss (−) against fee-for-service, % (clipped at ±100)")
    ax.set_ylabel("hospitals")
    ax.legend()
    fig.tight_layout()
    return fig


def _trend(values: pd.DataFrame):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    months = values[(values["period_type"] == "month") & values["point_value"].notna()]
    # the months at positions, labelled: texts such as "01" that read as numbers would make matplotlib
    # log, for every line, that it plots them as categories
    months = months.assign(month=months["period"].str[5:])
    labels = sorted(months["month"].unique())
    at = {m: i for i, m in enumerate(labels)}
    for region, df in months.groupby("region"):
        df = df.sort_values("period")
        ax.plot(df["month"].map(at).tolist(), df["point_value"].astype(float), marker=".", label=region)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("month")
    ax.set_ylabel("provisional point value, yuan/point")
    ax.set_title("Monthly point value per region (point-method regions)")
    if not months.empty:
        ax.legend(fontsize=6, ncol=4)
    fig.tight_layout()
    return fig


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, border=0, classes="t", na_rep="–", escape=True)


def write_report(path: str | Path, year: int, values: Sequence[dict], simulation: Sequence[dict],
                 *, title: str | None = None, run_id: str = "") -> Path:
    """Write the report for one settlement year; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    vals = pd.DataFrame(list(values))
    sim = pd.DataFrame(list(simulation))
    year_rows = vals[vals["period_type"] == "year"][
        ["region", "method", "cases", "budget", "patient_payments", "ffs_fund", "surplus", "fund_retained",
         "hospital_share", "settlement_total", "total_points", "point_value", "base_rate"]]
    per = _by_hospital(sim) if not sim.empty else pd.DataFrame(
        columns=["region", "hospital_id", "ffs_fund", "point_fund", "rate_fund", "point_minus_ffs", "rate_minus_ffs"])
    totals = per.groupby("region", as_index=False)[["ffs_fund", "point_fund", "rate_fund"]].sum().round(2)
    parts = [
        f"<h1>{html.escape(title or f'DRG payment simulation {year}')}</h1>",
        f"<p>Settlement year {year}; run {html.escape(run_id)}. Fund payments before audit deductions. "
        "Point method: the year's settlement total split by points; rate method: per-case standards; "
        "fee-for-service: what the fund paid item by item.</p>",
        "<h2>Regions</h2>", _table(year_rows),
        "<h2>Fund payments per region under each method (yuan)</h2>", _table(totals),
    ]
    if not per.empty:
        parts += ["<h2>Hospitals: largest gains and losses</h2>",
                  _png(_bars(per, "point_minus_ffs", "DRG point method − fee-for-service")),
                  _png(_bars(per, "rate_minus_ffs", "DRG rate method − fee-for-service")),
                  "<h2>Distribution of gains and losses</h2>", _png(_distribution(per))]
    parts += ["<h2>Point value trend</h2>", _png(_trend(vals))]
    style = ("<style>body{font-family:sans-serif;margin:2em}table.t{border-collapse:collapse;font-size:12px}"
             "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}</style>")
    path.write_text(f"<!doctype html><html><head><meta charset='utf-8'><title>casemix settlement {year}</title>"
                    f"{style}</head><body>{''.join(parts)}</body></html>", encoding="utf-8")
    return path
