"""Figures of a calibration run (matplotlib, Agg backend: no display needed), from small pandas frames.

Each function returns a ``matplotlib.figure.Figure``; :func:`save_all` writes them as PNG files.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

__all__ = ["rw_by_mdc", "trimming_before_after", "riv_by_region", "cmi_by_hospital", "save_all"]


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def rw_by_mdc(weights: pd.DataFrame):
    """Box plot of the relative weights (log scale) of the groups with cases, per MDC, all regions."""
    plt = _plt()
    df = weights[weights["cases_raw"] > 0]
    mdcs = sorted(df["mdc"].dropna().unique())
    fig, ax = plt.subplots(figsize=(max(6, 0.4 * len(mdcs) + 2), 4))
    data = [df.loc[df["mdc"] == m, "relative_weight"].to_numpy() for m in mdcs]
    if data:
        ax.boxplot(data, showfliers=True)
        ax.set_xticks(range(1, len(mdcs) + 1), mdcs, rotation=90, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("relative weight")
    ax.set_title("Relative weights per MDC (groups with cases, all regions)")
    fig.tight_layout()
    return fig


def trimming_before_after(samples: pd.DataFrame):
    """Histograms of ln cost before (all cases) and after trimming (kept cases) for a few groups;
    ``samples``: region, drg, cost, kept (one panel per region + DRG)."""
    plt = _plt()
    keys = list(samples[["region", "drg"]].drop_duplicates().itertuples(index=False, name=None))
    fig, axes = plt.subplots(1, max(1, len(keys)), figsize=(4 * max(1, len(keys)), 3.2), squeeze=False)
    for ax, (region, drg) in zip(axes[0], keys):
        part = samples[(samples["region"] == region) & (samples["drg"] == drg)]
        logs = np.log(part["cost"].to_numpy(dtype=float))
        bins = np.histogram_bin_edges(logs, bins=40) if len(logs) else 10
        ax.hist(logs, bins=bins, alpha=0.5, label="before")
        ax.hist(logs[part["kept"].to_numpy(dtype=bool)], bins=bins, alpha=0.7, label="after")
        ax.set_title(f"{region} {drg} (n={len(part)})", fontsize=9)
        ax.set_xlabel("ln cost")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Costs before and after trimming, largest groups")
    fig.tight_layout()
    return fig


def riv_by_region(quality: pd.DataFrame, target: float = 0.70):
    """Bar chart of RIV per region with the target line."""
    plt = _plt()
    df = quality.sort_values("region")
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(df) + 2), 3.5))
    # (bars at positions, labelled with the region codes: codes that read as numbers would make
    # matplotlib log that it plots them as categories, once per call)
    x = range(len(df))
    ax.bar(x, df["riv"].astype(float))
    ax.set_xticks(x, df["region"].tolist())
    ax.axhline(target, color="red", linestyle="--", linewidth=1, label=f"target {target:.2f}")
    ax.set_ylim(0, 1)
    ax.set_ylabel("RIV")
    ax.tick_params(axis="x", rotation=90)
    ax.legend(fontsize=8)
    ax.set_title("Reduction in variance (trimmed cases) per region")
    fig.tight_layout()
    return fig


def cmi_by_hospital(indicators: pd.DataFrame, data_year: int | None = None):
    """CMI of every hospital (one dot each, size by cases) per region, for one data year
    (default: the most recent)."""
    plt = _plt()
    year = data_year if data_year is not None else int(indicators["data_year"].max())
    df = indicators[indicators["data_year"] == year]
    regions = sorted(df["region"].unique())
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(regions) + 2), 3.5))
    rng = np.random.default_rng(0)
    for i, region in enumerate(regions):
        part = df[df["region"] == region]
        x = i + rng.uniform(-0.25, 0.25, len(part))
        sizes = 5 + 60 * part["cases"].to_numpy(dtype=float) / max(1.0, float(df["cases"].max()))
        ax.scatter(x, part["cmi"], s=sizes, alpha=0.6)
    ax.set_xticks(range(len(regions)), regions, rotation=90)
    ax.set_ylabel("CMI")
    ax.set_title(f"CMI per hospital, {year} cases")
    fig.tight_layout()
    return fig


def save_all(figures: Mapping[str, object], folder: str | os.PathLike) -> list[str]:
    """Save ``{name: figure}`` as ``<folder>/<name>.png`` and close them; returns the paths."""
    plt = _plt()
    Path(folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        path = str(Path(folder) / f"{name}.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
