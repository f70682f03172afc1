"""The report's and the calibration's figures label codes that read as numbers (regions, hospitals,
months) as they are, without matplotlib logging, per call, that it plots them as categories."""
from __future__ import annotations

import logging

import pandas as pd

from casemix.calibrate.plots import riv_by_region
from casemix.payment.report import _bars, _trend


def _labels(ticks) -> list[str]:
    return [t.get_text() for t in ticks]


def test_codes_that_read_as_numbers_are_labelled_without_a_log_line(caplog):
    caplog.set_level(logging.INFO, logger="matplotlib.category")
    riv = riv_by_region(pd.DataFrame({"region": ["532300", "530100"], "riv": [0.75, 0.8]}))
    assert _labels(riv.axes[0].get_xticklabels()) == ["530100", "532300"]  # (sorted by region)
    assert [p.get_height() for p in riv.axes[0].patches] == [0.8, 0.75]

    per = pd.DataFrame({"region": ["530100"] * 3, "hospital_id": ["1001", "1002", "1003"],
                        "gain": [-20_000.0, 10_000.0, 50_000.0]})
    bars = _bars(per, "gain", "t", n=1)
    assert _labels(bars.axes[0].get_yticklabels()) == ["1001", "1003"]  # (the largest loss and gain)
    assert [p.get_width() for p in bars.axes[0].patches] == [-2.0, 5.0]

    values = pd.DataFrame({"region": ["530100", "530100", "532300"], "period_type": "month",
                           "period": ["2025-02", "2025-01", "2025-02"], "point_value": [10.5, 10.0, 11.0]})
    trend = _trend(values)
    assert _labels(trend.axes[0].get_xticklabels()) == ["01", "02"]
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in trend.axes[0].lines}
    assert lines == {"530100": ([0, 1], [10.0, 10.5]), "532300": ([1], [11.0])}
    assert not [r for r in caplog.records if r.name == "matplotlib.category"]
