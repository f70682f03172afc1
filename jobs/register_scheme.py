"""Register grouping scheme folders as versions of MLflow registered models (drg-scheme-<id>) and
point an alias at them; unchanged scheme data reuses its existing version.

Examples:
  casemix register-scheme                          # every scheme the policy uses, alias from the policy
  casemix register-scheme chs-drg-1.1 --alias production
"""
from __future__ import annotations

from pathlib import Path

from casemix.jobkit import JobError, job_main

NAME = "register-scheme"


def add_arguments(parser) -> None:
    parser.add_argument("schemes", nargs="*", help="scheme ids (folders of schemes.dir); default: the policy's schemes")
    parser.add_argument("--alias", help="alias to set on the version (default: the policy's grouping.model_alias)")


def run(ctx, args) -> dict:
    from casemix.grouping import SchemeError
    from casemix.grouping.model import register_scheme
    from casemix.policy import load_policy
    from casemix.tracking import configure_tracking, ensure_experiment, git_commit

    policy = load_policy(ctx.settings)
    client = configure_tracking(ctx.settings)
    experiment_id = ensure_experiment(client, ctx.settings, "grouping")
    alias = args.alias or policy.grouping.model_alias
    out = []
    for scheme_id in args.schemes or policy.grouping.schemes:
        folder = Path(ctx.settings.schemes_path) / scheme_id
        if not folder.is_dir():
            raise JobError(f"no scheme folder {folder} (schemes.dir = {ctx.settings.schemes_path})")
        try:
            version = register_scheme(folder, alias=alias, experiment_id=experiment_id,
                                      tags={"casemix.git_commit": git_commit(ctx.settings.root),
                                            "casemix.config": ctx.settings.name})
        except SchemeError as exc:
            raise JobError(f"scheme {scheme_id} is malformed and was not registered: {exc}") from None
        out.append({"scheme": scheme_id, "model": version.name, "version": version.version, "alias": alias,
                    "created": version.created, "content_hash": version.content_hash})
    return {"registered": out, "mlflow_tracking_uri": ctx.settings.tracking_uri}


main = job_main(__name__)

if __name__ == "__main__":
    raise SystemExit(main())
