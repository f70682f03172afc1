"""List the table catalogue with each table's location and current Delta version (or one table's history).

Examples:
  casemix tables
  casemix tables --history claims
"""
from __future__ import annotations

from casemix.jobkit import job_main

NAME = "tables"


def add_arguments(parser) -> None:
    parser.add_argument("--history", metavar="TABLE", help="print the commit history of one table")


def run(ctx, args) -> dict:
    from casemix.tables import CATALOGUE

    store = ctx.store
    if args.history:
        return {"table": args.history, "location": store.location(args.history), "history": store.history(args.history)}
    return {
        "engine": store.engine,
        "warehouse": store.warehouse,
        "tables": [
            {"name": t.name, "location": store.location(t), "version": store.version(t),
             "partition_by": list(t.partition_by), "merge_keys": list(t.merge_keys), "description": t.description}
            for t in CATALOGUE.values()
        ],
    }


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
