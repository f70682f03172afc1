"""Putting written files on disk before a Delta commit names them, and the commit itself before the
store reports its version (local file systems only).

Closing a file does not put its data on disk: the kernel writes it back later (tens of seconds on
Linux). A commit that names a data file whose data a crash can still lose leaves a table whose
snapshot points at a truncated or empty file, and a log entry that is not on disk can come back
empty. So the delta-rs store (:mod:`casemix.storage.deltars`) syncs every data file it commits,
and the new folders above them, before the commit (unless the writer says it did, as the grouping
tasks do with :class:`FileSettler`), and syncs the log up to the new version (and the folders that
hold it) before it reports the version. delta-rs itself does not sync on a local file system (an
strace of deltalake 1.6.6 shows no fsync or fdatasync: the log entry is a staging file linked to
its name), so a new log entry is on disk some time after it appears, not at the same instant (that
time includes any checkpoint delta-rs writes after the commit); what the store guarantees is that
the log up to a version it reported, and the files it names, are on disk.

``fdatasync`` where the platform has it, else ``fsync`` (on macOS that does not flush the drive's
own cache: ``F_FULLFSYNC`` would).

On HDFS or S3 there is nothing to do here: what makes a file durable there is theirs to say (HDFS:
``dfs.datanode.synconclose``), and there is no local page cache.
"""
from __future__ import annotations

import errno
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

import pyarrow.fs as pafs

__all__ = ["FOOTER_READ_BYTES", "sync_file", "sync_folder", "sync_folders", "folders_up_to", "sync_files",
           "FileSettler"]

#: bytes at the end of a Parquet file that a reader fetches for its footer in one read (Arrow's
#: default ``footer_read_size``): :func:`sync_file` with ``release`` leaves them in the page cache,
#: for the commit that reads the footer back
FOOTER_READ_BYTES = 64 * 1024


def sync_file(path: str, *, release: bool = False) -> None:
    """``fdatasync`` the file at ``path``; with ``release``, then drop its pages from the page cache
    (``POSIX_FADV_DONTNEED``) except the last :data:`FOOTER_READ_BYTES` (advice only: failing to
    release is not an error)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        # (a new descriptor after the writer's close: Linux >= 4.16 still reports a writeback error
        # that happened before it was opened, if nothing else saw it)
        getattr(os, "fdatasync", os.fsync)(fd)
        if release and hasattr(os, "posix_fadvise"):
            head = os.fstat(fd).st_size - FOOTER_READ_BYTES
            if head > 0:
                try:
                    os.posix_fadvise(fd, 0, head, os.POSIX_FADV_DONTNEED)
                except OSError:
                    pass  # (advice: the file is on disk all the same)
    finally:
        os.close(fd)


def sync_folder(path: str) -> None:
    """``fsync`` a folder, so that the entries created in it (files, folders) are on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno != errno.EINVAL:  # (some file systems cannot sync a folder, as PostgreSQL knows)
            raise
    finally:
        os.close(fd)


def folders_up_to(folder: str, top: str | None) -> list[str]:
    """``folder`` and the folders above it up to ``top`` included (just ``folder`` when it is not under
    ``top``, or ``top`` is None)."""
    chain = [os.path.normpath(folder)]
    top = os.path.normpath(top) if top else None
    if top is not None and os.path.commonpath([top, chain[0]]) == top:
        while chain[-1] != top:
            chain.append(os.path.dirname(chain[-1]))
    return chain


def sync_files(fs: pafs.FileSystem, paths: Iterable[str], top: str | None, *, threads: int = 8) -> None:
    """Sync the files ``paths`` (in ``threads`` threads: the disk takes several writebacks at once),
    then every folder from each one's up to ``top``, each before those above it. Raises the first
    error (of the files in the order given; no folder is synced after a file failed). Does nothing
    unless ``fs`` is the local file system."""
    if not isinstance(fs, pafs.LocalFileSystem):
        return
    paths = list(paths)
    if not paths:
        return
    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(paths)))) as pool:
        list(pool.map(sync_file, paths))  # (raises the first error, once all have run)
    sync_folders({f for p in paths for f in folders_up_to(os.path.dirname(p), top)})


def sync_folders(folders: Iterable[str]) -> None:
    """:func:`sync_folder` each of ``folders``, each before those above it (the entry of a new folder
    in its parent is only worth syncing once the folder itself is)."""
    for folder in sorted(folders, reverse=True):  # (a folder sorts after the folders above it)
        sync_folder(folder)


class FileSettler:
    """Makes the files a task writes durable before the task ends, and drops them from the page cache,
    in a background thread while the task goes on writing: :func:`sync_file` with ``release`` for
    each file as it is closed (all but its footer leave the page cache), and at the end
    :func:`sync_folder` for every folder from each file's up to ``top`` (included), so that the
    entries of the new files and of the new folders above them are durable too. On the benchmark
    VM, 2 GB written into the page cache cost about 4 s of kernel CPU, and about 1 s written and
    released so, writeback included (likely because the released pages are reused for the next
    files; bench/RESULTS.md, bench/bench_page_cache.py). :meth:`finish` waits for all of it and
    raises the first error, so a task whose files are not safely on disk fails and nothing is
    committed. Only on a local file system (see the module docstring)."""

    def __init__(self, fs: pafs.FileSystem, top: str | None = None):
        self.local = isinstance(fs, pafs.LocalFileSystem)
        self.top = os.path.normpath(top) if top else None
        self.paths: queue.SimpleQueue = queue.SimpleQueue()
        self.folders: set[str] = set()
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def add(self, path: str) -> None:
        """Settle ``path`` (closed: nothing writes to it any more)."""
        if not self.local:
            return
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="casemix-file-settler", daemon=True)
            self.thread.start()
        self.paths.put(path)

    def _run(self) -> None:
        # the thread stops at the first error (the task fails: what is still queued needs no settling)
        try:
            while (path := self.paths.get()) is not None:
                sync_file(path, release=True)
                self.folders.update(folders_up_to(os.path.dirname(path), self.top))
            sync_folders(self.folders)
        except Exception as e:  # (kept for finish() to raise: a dying thread would leave the task none the wiser)
            self.error = e

    def finish(self, check: bool = True) -> None:
        """Wait until every file added (and the folders above it) is on disk; with ``check``, raise the
        first error."""
        if self.thread is not None:
            self.paths.put(None)
            self.thread.join()
            self.thread = None
        if check and self.error is not None:
            raise self.error
