"""Fixtures for the grouping tests (no Spark).

The real scheme data lives outside the repository.  ``schemes_dir`` is
``$CASEMIX_SCHEMES_DIR`` or ``<repo root>/../shared/schemes``; if it is missing the
tests fail (never skip) with a message saying where it was looked for.
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from casemix.grouping import OUTPUT_COLUMNS, group_frame, group_record, load_compiled, load_scheme

SCHEME_IDS = ("chs-drg-1.1", "yunnan-2023", "zhejiang-2022")


@pytest.fixture(scope="session")
def schemes_dir() -> Path:
    env = os.environ.get("CASEMIX_SCHEMES_DIR")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "schemes"
    path = path.resolve()
    missing = [sid for sid in SCHEME_IDS if not (path / sid / "mdc.json").is_file()]
    if missing:
        pytest.fail(f"grouping scheme data not found: {path} lacks {missing}. Set CASEMIX_SCHEMES_DIR to the folder "
                    f"holding {', '.join(SCHEME_IDS)} (default: <repo>/../shared/schemes)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("casemix-cache")


@pytest.fixture(scope="session")
def schemes(schemes_dir):
    """scheme id -> loaded Scheme (loaded once per session)."""
    cache: dict = {}

    def get(sid: str):
        if sid not in cache:
            cache[sid] = load_scheme(schemes_dir / sid)
        return cache[sid]

    return get


@pytest.fixture(scope="session")
def compiled(schemes_dir, cache_dir):
    """scheme id -> CompiledScheme (compiled once per session, session-private disk cache)."""
    cache: dict = {}

    def get(sid: str):
        if sid not in cache:
            cache[sid] = load_compiled(schemes_dir / sid, cache_dir)
        return cache[sid]

    return get


def make_record(**kw) -> dict:
    rec = {"sex": "1", "age_years": 50, "age_days": None, "birth_weight_g": None, "dept": None, "los_days": 5,
           "discharge_status": "1", "principal_dx": None, "secondary_dxs": [], "procedures": []}
    rec.update(kw)
    return rec


@pytest.fixture(scope="session")
def group(schemes, compiled):
    """group(scheme_id, **record_fields) -> result dict of the vectorised core.

    Every call also runs the reference implementation and asserts that both agree on
    every output field (trace included), so each hand-worked case is a cross-check too.
    """

    def run(sid: str, *, apply_code_maps: bool = False, unknown_codes: str = "invalid", **kw) -> dict:
        rec = make_record(**kw)
        df = pd.DataFrame([rec])
        for col in ("secondary_dxs", "procedures"):
            df[col] = pd.Series([rec[col]], dtype=object)
        core = group_frame(compiled(sid), df, apply_code_maps=apply_code_maps, unknown_codes=unknown_codes)
        got = {c: (v.item() if hasattr(v, "item") else v) for c, v in core.iloc[0].items()}
        ref = group_record(schemes(sid), rec, apply_code_maps=apply_code_maps, unknown_codes=unknown_codes)
        assert list(core.columns) == list(OUTPUT_COLUMNS)
        assert got == ref, f"core and reference differ:\ncore={got}\nref ={ref}"
        return got

    return run
