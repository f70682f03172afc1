"""Helpers of the calibration tests: tiny hand-built claims and a small synthetic province in Delta."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from casemix.policy import CalibrationPolicy

SCHEME = "chs-drg-1.1"
AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
#: months written by the synthetic fixtures (few partitions keep the tests fast)
MONTHS = (6,)


def claims(spark, rows):
    """grouped_claims-like rows from ``(region, hospital, month, los, cost, drg[, status])``; MDC and ADRG
    are derived from the DRG code (MDC<first letter>, first three characters)."""
    out = []
    for row in rows:
        region, hospital, month, los, cost, drg, *rest = row
        status = rest[0] if rest else "grouped"
        out.append((region, hospital, month, int(los), Decimal(str(cost)).quantize(Decimal("0.01")), SCHEME,
                    f"MDC{drg[0]}" if drg else None, drg[:3] if drg and status == "grouped" else None,
                    drg if status == "grouped" else None, status))
    return spark.createDataFrame(out, "region string, hospital_id string, discharge_month string, los_days int, "
                                      "total_cost decimal(18,2), scheme_id string, mdc string, adrg string, "
                                      "drg string, group_status string")


def spec(**changes) -> CalibrationPolicy:
    """The default spec with dotted-key changes (validated)."""
    from casemix.calibrate import override_spec

    return override_spec(CalibrationPolicy(), changes)


def by_key(df, *keys):
    """Collected rows as {key tuple (or single key): row dict}."""
    out = {}
    for r in df.collect():
        d = r.asDict()
        k = tuple(d[c] for c in keys)
        out[k[0] if len(k) == 1 else k] = d
    return out


@pytest.fixture
def write_grouped(spark, store):
    """Write a synthetic grouped_claims table (3 small regions, 2022-2024) and return its version."""
    from casemix.calibrate.synthetic import synthetic_grouped_claims

    def write(cases=4000, regions=("530100", "530300", "530400"), groups=40, seed=11, **kwargs):
        df = synthetic_grouped_claims(spark, cases=cases, regions=regions, groups=groups, seed=seed,
                                      hospitals_per_region=6, months=MONTHS, partitions=2, **kwargs)
        months = [f"{y}-{m:02d}" for y in (2022, 2023, 2024) for m in MONTHS]
        return store.replace_partitions("grouped_claims", df, {"discharge_month": months})

    return write


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory):
    """An MLflow sqlite store with its schema already created (creating one runs ~100 migrations, seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def settings(settings, mlflow_template):
    """The project's per-test settings, whose (still empty) sqlite MLflow store starts as a copy of the
    migrated template."""
    import shutil
    from pathlib import Path

    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        shutil.copyfile(mlflow_template, uri[len("sqlite:///"):])
    return settings
