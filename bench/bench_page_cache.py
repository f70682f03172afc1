"""What writing files costs the kernel, with and without releasing them from the page cache.

The file-wise grouping job writes ~2 GB of Parquet per 10 M claims. This benchmark writes the same
amount of incompressible bytes, in files of --file-mb, two ways, --repeat times each, alternating
(and which goes first alternates too; the files of every run are kept until the end, as a table
keeps its older versions):

  page cache: write and close each file; the kernel writes it back later, not timed (unless the
      dirty data crosses the kernel's background threshold during the run: the column "dirty MB at
      end" shows how much of it was still not written back when the run ended);
  settled: the same, each closed file handed to the job's ``FileSettler`` (``fdatasync``, then
      ``POSIX_FADV_DONTNEED`` for all but its last 64 KiB; its folder ``fsync``-ed at the end), timed
      until all are on disk.

Per run it records the wall time, the process's kernel CPU time and the whole machine's busy CPU
time (all processes and kernel threads, from /proc/stat: Linux only), and prints the runs and, per
way, the fastest run (records are megabytes, so records/s is MB/s).

  python bench/bench_page_cache.py                 # 2 GB in 8 MB files, 4 runs each way
  python bench/bench_page_cache.py --gigabytes 0.5 --repeat 2
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "lib"))

from harness import Measurement, machine, measure, print_table  # noqa: E402


def _machine_busy() -> float:
    """Seconds of CPU the whole machine has spent busy (not idle, not waiting for I/O) since boot."""
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def write_files(folder: Path, files: int, chunk: bytes, chunks: int, settle: bool) -> None:
    import pyarrow.fs as pafs

    from casemix.storage.durable import FileSettler

    folder.mkdir(parents=True)
    settler = FileSettler(pafs.LocalFileSystem())
    for i in range(files):
        path = folder / f"part-{i:05d}.bin"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            for _ in range(chunks):
                os.write(fd, chunk)
        finally:
            os.close(fd)
        if settle:
            settler.add(str(path))
    settler.finish()


def _dirty_mb() -> float:
    """Dirty page-cache data not yet written back, MB (/proc/meminfo)."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Dirty:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--file-mb", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=4)
    parser.add_argument("--dir", default=str(HERE / ".data"), help="a folder on the disk to measure")
    args = parser.parse_args()
    chunk = os.urandom(1 << 20)
    megabytes = int(args.gigabytes * 1024)
    files = max(1, megabytes // args.file_mb)
    megabytes = files * args.file_mb
    root = Path(args.dir) / f"page-cache-{os.getpid()}"
    print(f"machine: {machine()}\n")
    runs: list[Measurement] = []
    try:
        for rep in range(args.repeat):
            for way in (("page cache", "settled") if rep % 2 == 0 else ("settled", "page cache")):
                os.sync()  # (a run does not pay for writing back the previous run's files)
                cpu, busy = os.times(), _machine_busy()
                with measure(way, megabytes) as m:
                    write_files(root / f"{rep}-{way.replace(' ', '-')}", files, chunk, args.file_mb,
                                way == "settled")
                m.extra["kernel CPU s (process)"] = f"{os.times().system - cpu.system:.2f}"
                m.extra["busy CPU s (machine)"] = f"{_machine_busy() - busy:.2f}"
                m.extra["dirty MB at end"] = f"{_dirty_mb():,.0f}"
                m.extra["note"] = f"run {rep + 1}"
                runs.append(m)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    title = f"Writing {megabytes:,} MB in {files} files of {args.file_mb} MB, {args.repeat} runs each way"
    print_table(title + ": every run", runs, baseline="page cache")
    print()
    best = [min((r for r in runs if r.name == way), key=lambda r: r.seconds) for way in ("page cache", "settled")]
    print_table(title + ": fastest run each way", best, baseline="page cache")


if __name__ == "__main__":
    main()
