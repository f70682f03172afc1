"""``casemix <job>``: one subcommand per job of ``jobs/`` (each also runs as ``spark-submit jobs/<job>.py``)."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Optional, Sequence

from casemix.config import ConfigError
from casemix.jobkit import JobError, add_common_arguments, run_parsed

#: subcommand -> job module (in the order of the data flow)
JOBS: dict[str, str] = {
    "pipeline": "casemix_jobs.pipeline",
    "generate-claims": "casemix_jobs.generate_claims",
    "ingest-claims": "casemix_jobs.ingest_claims",
    "register-scheme": "casemix_jobs.register_scheme",
    "group-claims": "casemix_jobs.group_claims",
    "group-file": "casemix_jobs.group_file",
    "calibrate-weights": "casemix_jobs.calibrate_weights",
    "promote-weights": "casemix_jobs.promote_weights",
    "load-hospitals": "casemix_jobs.load_hospitals",
    "load-deductions": "casemix_jobs.load_deductions",
    "score-cases": "casemix_jobs.score_cases",
    "settle": "casemix_jobs.settle",
    "tables": "casemix_jobs.show_tables",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="casemix",
        description="Group, weight and pay a province's medical insurance claims by case mix.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in JOBS.items():
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or "").strip()
        p = sub.add_parser(name, help=doc.splitlines()[0] if doc else None, description=doc,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_common_arguments(p)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = run_parsed(args._module, args)
    except (ConfigError, JobError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
    return 0


if __name__ == "__main__":  # python -m casemix.cli
    sys.exit(main())
