"""Compiled-scheme cache: save / reload / memo / invalidation by content hash."""
from __future__ import annotations

import logging
import shutil

import numpy as np
import pandas as pd
import pytest
from _grouping_records import RecordGenerator

from casemix.grouping import CODE_VERSION, group_frame, load_compiled, load_scheme, read_compiled, save_compiled
from casemix.grouping import compile as compile_mod

CHS = "chs-drg-1.1"


@pytest.fixture
def fresh_memo():
    compile_mod.clear_memo()
    yield
    compile_mod.clear_memo()


def _same(a, b):
    assert a.meta == b.meta
    assert sorted(a.arrays) == sorted(b.arrays)
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])


def test_save_reload_identical(schemes, compiled, tmp_path):
    c = compiled(CHS)
    path = save_compiled(c, tmp_path / "x.npz")
    c2 = read_compiled(path)
    _same(c, c2)
    df = RecordGenerator(schemes(CHS), seed=3).frame(3000)
    pd.testing.assert_frame_equal(group_frame(c, df), group_frame(c2, df))


def test_load_compiled_uses_disk_cache_and_memo(schemes_dir, tmp_path, fresh_memo, monkeypatch):
    folder = schemes_dir / CHS
    c1 = load_compiled(folder, tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert [f.name for f in files] == [f"grouping-{c1.content_hash}-v{CODE_VERSION}.npz"]
    assert load_compiled(folder, tmp_path) is c1  # in-process memo
    # a new process (memo cleared) reads the cache instead of compiling
    compile_mod.clear_memo()
    monkeypatch.setattr(compile_mod, "compile_scheme", lambda *a, **k: pytest.fail("recompiled despite cache"))
    c2 = load_compiled(folder, tmp_path)
    assert c2 is not c1
    _same(c1, c2)


def test_cache_dir_from_environment(schemes_dir, tmp_path, fresh_memo, monkeypatch):
    monkeypatch.setenv("CASEMIX_CACHE_DIR", str(tmp_path / "envcache"))
    load_compiled(schemes_dir / CHS)
    assert len(list((tmp_path / "envcache").glob("grouping-*.npz"))) == 1


def test_cache_invalidated_when_content_changes(schemes_dir, tmp_path, fresh_memo):
    root = tmp_path / "schemes"
    root.mkdir()
    shutil.copy(schemes_dir / "NOTICE", root / "NOTICE")
    folder = root / CHS
    shutil.copytree(schemes_dir / CHS, folder)
    cache = tmp_path / "cache"
    df = pd.DataFrame([{"sex": "1", "age_years": 50, "principal_dx": "I44.200", "secondary_dxs": ["E87.100"]}])
    c1 = load_compiled(folder, cache)
    assert group_frame(c1, df).drg[0] == "FU13"  # E87.100 is a CC
    # remove E87.100 from cc.csv: new content hash -> new compile, new cache file, new result
    p = folder / "cc.csv"
    p.write_text("".join(line for line in p.read_text(encoding="utf-8").splitlines(keepends=True)
                         if not line.startswith("E87.100,")), encoding="utf-8")
    c2 = load_compiled(folder, cache)
    assert c2.content_hash != c1.content_hash
    assert group_frame(c2, df).drg[0] == "FU15"
    assert len(list(cache.glob("grouping-*.npz"))) == 2
    assert load_scheme(folder).content_hash == c2.content_hash


def test_corrupt_cache_file_is_replaced(schemes_dir, tmp_path, fresh_memo, caplog):
    folder = schemes_dir / CHS
    c1 = load_compiled(folder, tmp_path)
    f = next(tmp_path.glob("*.npz"))
    f.write_bytes(b"not a zip file")
    compile_mod.clear_memo()
    with caplog.at_level(logging.WARNING):
        c2 = load_compiled(folder, tmp_path)
    assert "ignoring unreadable grouping cache" in caplog.text
    _same(c1, c2)
    read_compiled(f)  # rewritten and readable again
