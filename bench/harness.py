"""What every benchmark shares: timing, peak memory of the whole process tree, and the table it prints.

Peak memory is sampled (every 0.1 s) as the summed resident set size of this process and all its
descendants (the Spark JVM and its Python workers), so it covers what Spark uses, not only the driver.
"""
from __future__ import annotations

import os
import platform
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil

__all__ = ["Measurement", "measure", "best_of", "print_table", "machine", "add_spark_arguments", "spark_session"]


@dataclass
class Measurement:
    name: str
    records: int
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else float("nan")


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


@contextmanager
def measure(name: str, records: int):
    """Time the block and sample the process tree's peak RSS while it runs."""
    m = Measurement(name, records)
    me = psutil.Process(os.getpid())
    peak = [_tree_rss(me)]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.1):
            peak[0] = max(peak[0], _tree_rss(me))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    start = time.perf_counter()
    try:
        yield m
    finally:
        m.seconds = time.perf_counter() - start
        stop.set()
        thread.join()
        m.peak_rss_mb = max(peak[0], _tree_rss(me)) / 2**20


def add_spark_arguments(parser) -> None:
    """--master, --driver-memory, --shuffle-partitions and --workdir, as the Spark benchmarks take them."""
    parser.add_argument("--master", default=os.environ.get("CASEMIX_SPARK_MASTER", "local[*]"))
    parser.add_argument("--driver-memory", default="8g")
    parser.add_argument("--shuffle-partitions", type=int, default=8)
    parser.add_argument("--workdir", help="folder for the Parquet input (default: a temporary folder)")


def spark_session(args, app: str):
    """The session of a benchmark from :func:`add_spark_arguments` (workers use this interpreter)."""
    import sys

    from casemix.config import SparkSettings
    from casemix.spark import build_session

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return build_session(SparkSettings(master=args.master, shuffle_partitions=args.shuffle_partitions,
                                       driver_memory=args.driver_memory,
                                       conf={"spark.ui.showConsoleProgress": "false"}), app)


def best_of(name: str, records: int, run, repeat: int = 1, warmup: bool = False, before=None) -> Measurement:
    """Call ``run()`` ``repeat`` times (after one untimed call if ``warmup``; ``before()``, untimed,
    before each timed call); the fastest run, with the highest peak RSS of all runs (on a shared machine
    the minimum is the least disturbed run)."""
    if warmup:
        run()
    runs = []
    for _ in range(repeat):
        if before is not None:
            before()
        with measure(name, records) as m:
            run()
        runs.append(m)
    best = min(runs, key=lambda r: r.seconds)
    best.peak_rss_mb = max(r.peak_rss_mb for r in runs)
    if repeat > 1 or warmup:
        best.extra["note"] = ("warm, " if warmup else "") + f"best of {repeat}"
    return best


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return (f"{os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB RAM, "
            f"Python {platform.python_version()}, {platform.system()} {platform.release()}")


def print_table(title: str, rows: list[Measurement], baseline: str | None = None) -> str:
    """Print (and return) a Markdown table; ``ratio`` is each row's records/s over the baseline row's."""
    base = next((r for r in rows if r.name == baseline), None)
    extra_cols = sorted({k for r in rows for k in r.extra})
    head = ["case", "records", "seconds", "records/s", "peak RSS (MB)", "ratio to " + (baseline or "-"), *extra_cols]
    lines = [f"### {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ratio = f"{r.rate / base.rate:.2f}" if base else "-"
        cells = [r.name, f"{r.records:,}", f"{r.seconds:.2f}", f"{r.rate:,.0f}", f"{r.peak_rss_mb:,.0f}", ratio,
                 *[str(r.extra.get(k, "")) for k in extra_cols]]
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text, flush=True)
    return text
