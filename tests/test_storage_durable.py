"""Putting files on disk before a commit names them (casemix.storage.durable); no Spark."""
from __future__ import annotations

import errno
import os
import sys

import pyarrow.fs as pafs
import pytest

from casemix.storage.durable import FOOTER_READ_BYTES, FileSettler, folders_up_to, sync_file, sync_files

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/fd; posix_fadvise")


@linux
def test_a_released_file_keeps_only_its_footer_read_in_the_page_cache(tmp_path, sync_calls):
    big, small = tmp_path / "big.parquet", tmp_path / "small.parquet"
    big.write_bytes(b"x" * (FOOTER_READ_BYTES + 5000))
    small.write_bytes(b"x" * FOOTER_READ_BYTES)
    sync_file(str(big), release=True)
    sync_file(str(small), release=True)
    sync_file(str(big))
    assert sync_calls == [("fdatasync", str(big)), ("fadvise", str(big), 0, 5000, os.POSIX_FADV_DONTNEED),
                     ("fdatasync", str(small)),  # (all of it is the footer read)
                     ("fdatasync", str(big))]


@linux
def test_sync_files_syncs_every_file_then_each_folder_up_to_the_top_before_those_above_it(tmp_path, sync_calls):
    (tmp_path / "t" / "a" / "b").mkdir(parents=True)
    (tmp_path / "t" / "c").mkdir()
    files = [str(tmp_path / "t" / "a" / "b" / "1.parquet"), str(tmp_path / "t" / "a" / "b" / "2.parquet"),
             str(tmp_path / "t" / "c" / "3.parquet")]
    for f in files:
        open(f, "wb").write(b"x")
    sync_files(pafs.LocalFileSystem(), files, top=str(tmp_path / "t"), threads=2)
    assert sorted(sync_calls[:3]) == [("fdatasync", f) for f in files]
    t = str(tmp_path / "t")
    assert sync_calls[3:] == [("fsync", f) for f in (f"{t}/c", f"{t}/a/b", f"{t}/a", t)]
    # not the local file system: nothing
    sync_calls.clear()
    sync_files(pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), ["t/c/3.parquet"], top=None)
    assert sync_calls == []


@linux
def test_sync_files_raises_the_first_error_and_syncs_no_folder_after_it(tmp_path, sync_calls):
    (tmp_path / "x.parquet").write_bytes(b"x")
    paths = [str(tmp_path / "x.parquet"), str(tmp_path / "missing-1.parquet"), str(tmp_path / "missing-2.parquet")]
    with pytest.raises(FileNotFoundError, match="missing-1.parquet"):
        sync_files(pafs.LocalFileSystem(), paths, top=str(tmp_path), threads=3)
    assert sync_calls == [("fdatasync", paths[0])]


def test_a_folder_that_cannot_be_synced_is_only_an_error_when_the_file_system_could(tmp_path, monkeypatch):
    from casemix.storage.durable import sync_folder

    def refuse(code):
        def fsync(fd):
            raise OSError(code, os.strerror(code))
        return fsync

    monkeypatch.setattr(os, "fsync", refuse(errno.EINVAL))  # (this file system cannot sync a folder)
    sync_folder(str(tmp_path))
    monkeypatch.setattr(os, "fsync", refuse(errno.EIO))
    with pytest.raises(OSError, match="Input/output error"):
        sync_folder(str(tmp_path))


def test_the_folder_chain(tmp_path):
    assert folders_up_to("/w/t/a/b", "/w/t") == ["/w/t/a/b", "/w/t/a", "/w/t"]
    assert folders_up_to("/w/t/a/b/", "/w/t/") == ["/w/t/a/b", "/w/t/a", "/w/t"]
    assert folders_up_to("/elsewhere/a", "/w/t") == ["/elsewhere/a"]
    assert folders_up_to("/w/t/a", None) == ["/w/t/a"]


def test_the_file_settler_only_settles_local_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.parquet").write_bytes(b"x")
    settler = FileSettler(pafs.LocalFileSystem(), top=str(tmp_path))
    settler.add(str(tmp_path / "a" / "b" / "x.parquet"))
    settler.finish()
    assert settler.folders == {str(tmp_path / "a" / "b"), str(tmp_path / "a"), str(tmp_path)}
    # the first error is raised; the files after it are not settled (the task fails anyway)
    settler = FileSettler(pafs.LocalFileSystem())
    settler.add(str(tmp_path / "missing.parquet"))
    settler.add(str(tmp_path / "a" / "b" / "x.parquet"))
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        settler.finish()
    assert settler.folders == set()
    unsettled = FileSettler(pafs.LocalFileSystem())
    unsettled.add(str(tmp_path / "missing.parquet"))
    unsettled.finish(check=False)  # (after another error: waits, does not raise)
    remote = FileSettler(pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()))
    remote.add("missing.parquet")
    remote.finish()
    assert remote.thread is None and remote.folders == set()


@linux
def test_the_file_settler_releases_all_but_the_footer_read(tmp_path, sync_calls):
    path = tmp_path / "x.parquet"
    path.write_bytes(b"x" * (FOOTER_READ_BYTES + 1))
    settler = FileSettler(pafs.LocalFileSystem(), top=str(tmp_path))
    settler.add(str(path))
    settler.finish()
    assert sync_calls == [("fdatasync", str(path)), ("fadvise", str(path), 0, 1, os.POSIX_FADV_DONTNEED),
                     ("fsync", str(tmp_path))]


def test_any_error_in_the_settler_thread_is_raised_by_finish(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.parquet").write_bytes(b"x")
    settler = FileSettler(pafs.LocalFileSystem(), top=str(tmp_path))
    settler.add("x.parquet")  # (relative, against an absolute top: the folder chain cannot be found)
    with pytest.raises(ValueError, match="absolute and relative"):
        settler.finish()
