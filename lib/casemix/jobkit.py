"""What every job shares: its command-line options, configuration, Spark session and store.

A job module (``jobs/<job>.py``) defines ``add_arguments(parser)`` and ``run(ctx, args)``, and ends
with ``if __name__ == "__main__": main()`` where ``main = job_main(__name__)``; the same module is a
``casemix <job>`` subcommand and a ``spark-submit jobs/<job>.py`` script.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional, Sequence

from casemix.config import ConfigError, Settings, default_config_path, load_settings

__all__ = ["JobContext", "add_common_arguments", "new_run_id", "run_module", "JobError"]

log = logging.getLogger("casemix")


class JobError(RuntimeError):
    """A job cannot go on; the message says why and what to do."""


def new_run_id(job: str) -> str:
    """A sortable, unique run id: ``<job>-<UTC time>-<random>``."""
    return f"{job}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--conf", dest="conf_file", default=None,
        help=f"environment configuration YAML (default: $CASEMIX_CONF or {default_config_path()})",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


@dataclass
class JobContext:
    """Configuration, lazily started Spark session and store, and the run id of one job run."""

    settings: Settings
    job: str
    run_id: str
    _spark: Any = field(default=None, repr=False)
    _store: Any = field(default=None, repr=False)

    @property
    def spark(self):
        if self._spark is None:
            from casemix.spark import build_session

            self._spark = build_session(self.settings, self.job)
        return self._spark

    @property
    def store(self):
        if self._store is None:
            from casemix.storage import open_store

            self._store = open_store(self.spark, self.settings)
        return self._store

    @classmethod
    def create(cls, settings: Settings, job: str, spark=None, store=None) -> "JobContext":
        return cls(settings=settings, job=job, run_id=new_run_id(job), _spark=spark, _store=store)


def build_parser(module) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"casemix {module.NAME}", description=(module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser)
    module.add_arguments(parser)
    return parser


def run_module(module, argv: Optional[Sequence[str]] = None, *, spark=None, store=None) -> dict[str, Any]:
    """Parse ``argv`` for ``module`` and run it; returns the job's summary dict (also printed as JSON)."""
    args = build_parser(module).parse_args(argv)
    return run_parsed(module, args, spark=spark, store=store)


def run_parsed(module, args: argparse.Namespace, *, spark=None, store=None) -> dict[str, Any]:
    logging.basicConfig(level=getattr(logging, args.log_level), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings(args.conf_file)
    ctx = JobContext.create(settings, module.NAME, spark=spark, store=store)
    summary = module.run(ctx, args)
    return summary


def job_main(module_name: str) -> Callable[[Optional[Sequence[str]]], int]:
    """The ``main`` of a job script: run it and print its summary, exit 2 on a configuration error."""

    def main(argv: Optional[Sequence[str]] = None) -> int:
        module = sys.modules[module_name]
        try:
            summary = run_module(module, argv)
        except (ConfigError, JobError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
        return 0

    return main
