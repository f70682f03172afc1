"""A grouping scheme as an MLflow registered model.

Each scheme folder (``<schemes.dir>/<scheme id>``) is registered as a version of the registered
model ``drg-scheme-<scheme id>``: a pyfunc whose ``predict`` groups a pandas frame of the
file-grouping columns (:data:`casemix.grouping.INPUT_COLUMNS`) with the scheme files stored as the
model's artifact. Versions carry the scheme's source, licence and content hash as tags; registering
unchanged scheme data returns the existing version instead of creating a new one. The grouping job
loads the version an alias names (``grouping.model_alias`` in the policy, e.g. ``production``).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from casemix.grouping.scheme import load_scheme

__all__ = ["SchemeModel", "SchemeVersion", "register_scheme", "resolve_scheme", "model_name", "SchemeModelError"]

TAG_HASH = "casemix.scheme.content_hash"
TAG_ID = "casemix.scheme.id"
TAG_SOURCE = "casemix.scheme.source"
TAG_LICENCE = "casemix.scheme.licence"


class SchemeModelError(LookupError):
    """A scheme model version that should exist does not."""


def model_name(scheme_id: str) -> str:
    return f"drg-scheme-{scheme_id}"


class SchemeModel(mlflow.pyfunc.PythonModel):
    """pyfunc: ``predict(frame)`` returns the grouping of every row (same index)."""

    def load_context(self, context):
        from casemix.grouping import load_compiled

        self.scheme_dir = str(_scheme_folder(Path(context.artifacts["scheme"])))
        self.compiled = load_compiled(self.scheme_dir)

    def predict(self, context, model_input: pd.DataFrame, params=None):
        from casemix.grouping import group_frame

        return group_frame(self.compiled, model_input)


def _scheme_folder(bundle: Path) -> Path:
    found = sorted(bundle.rglob("mdc.json"))
    if not found:
        raise SchemeModelError(f"{bundle} holds no scheme files (mdc.json)")
    return found[0].parent


def _bundle(scheme_dir: Path, scheme_id: str, into: Path) -> Path:
    """The artifact: the scheme folder unchanged (same content hash) with the licence NOTICE beside it."""
    bundle = into / "scheme"
    shutil.copytree(scheme_dir, bundle / scheme_id)
    for notice in (scheme_dir / "NOTICE", scheme_dir.parent / "NOTICE"):
        if notice.is_file():
            shutil.copy2(notice, bundle / "NOTICE")
            break
    return bundle


@dataclass(frozen=True)
class SchemeVersion:
    scheme_id: str
    name: str
    version: str
    content_hash: str
    created: bool = False

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


def _existing(client: MlflowClient, name: str, content_hash: str) -> Optional[str]:
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    for v in sorted(versions, key=lambda v: int(v.version)):
        if v.tags.get(TAG_HASH) == content_hash and v.status == "READY":
            return str(v.version)
    return None


def register_scheme(scheme_dir: str | os.PathLike, *, alias: str | None = None,
                    experiment_id: str | None = None, tags: dict[str, str] | None = None) -> SchemeVersion:
    """Register ``scheme_dir`` (MLflow must already point at the store: see
    :func:`casemix.tracking.configure_tracking`); the logging run goes to ``experiment_id``
    (default: the active experiment); set ``alias`` on the version when given."""
    scheme = load_scheme(scheme_dir)  # validates the scheme: a malformed one is never registered
    client = MlflowClient()
    name = model_name(scheme.scheme_id)
    version = _existing(client, name, scheme.content_hash)
    created = False
    tags_run = dict(tags or {})
    if version is None:
        source = json.dumps(scheme.source, ensure_ascii=False, default=str)[:4000]
        licence = scheme.licence_text.strip().splitlines()
        version_tags = {TAG_HASH: scheme.content_hash, TAG_ID: scheme.scheme_id, TAG_SOURCE: source,
                        TAG_LICENCE: " ".join(licence)[:4000]}
        with tempfile.TemporaryDirectory() as tmp, \
                mlflow.start_run(experiment_id=experiment_id, run_name=f"register-{scheme.scheme_id}",
                                 tags={"casemix.job": "register-scheme", **version_tags, **tags_run}):
            bundle = _bundle(Path(scheme_dir).resolve(), scheme.scheme_id, Path(tmp))
            info = mlflow.pyfunc.log_model(
                name="scheme",
                python_model=SchemeModel(),
                artifacts={"scheme": str(bundle)},
                pip_requirements=["casemix", "pandas<3", "numpy", "pyarrow"],
                registered_model_name=name,
            )
        version = str(info.registered_model_version)
        for key, value in version_tags.items():
            client.set_model_version_tag(name, version, key, value)
        client.update_registered_model(name, description=f"DRG grouping scheme {scheme.scheme_id} (casemix)")
        created = True
    if alias:
        client.set_registered_model_alias(name, alias, version)
    return SchemeVersion(scheme.scheme_id, name, version, scheme.content_hash, created)


def resolve_scheme(scheme_id: str, alias: str, *, download_to: str | None = None) -> tuple[SchemeVersion, str]:
    """The version ``alias`` names and a local folder holding its scheme files."""
    client = MlflowClient()
    name = model_name(scheme_id)
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise SchemeModelError(
            f"no version of registered model {name} has alias @{alias}: register it with "
            f"`casemix register-scheme {scheme_id} --alias {alias}`"
        ) from exc
    target = download_to or tempfile.mkdtemp(prefix=f"casemix-{scheme_id}-")
    local = mlflow.artifacts.download_artifacts(f"models:/{name}/{mv.version}", dst_path=target)
    scheme_dir = _scheme_folder(Path(local))
    return SchemeVersion(scheme_id, name, str(mv.version), mv.tags.get(TAG_HASH, "")), str(scheme_dir)
