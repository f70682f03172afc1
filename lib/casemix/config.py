"""Environment configuration: typed, validated, with environment-variable overrides.

A configuration file (``conf/local.yaml``, ``conf/cluster.yaml``) says where Spark runs, where the
Delta tables and the MLflow store live, and where the grouping schemes are. It is loaded into
:class:`Settings`; an unknown or misspelt key, a value of the wrong type or a missing file raises
:class:`ConfigError`, whose message names the file, the key and what was expected.

Relative paths are resolved against the project root: the folder that holds ``conf/`` (or
``$CASEMIX_HOME`` when set). URIs with a scheme (``hdfs://``, ``s3a://``, ``sqlite:///``, ...) are
kept as written.

Environment overrides (applied after the file is read, so they win):

=========================  =============================================
``CASEMIX_HOME``            project root for relative paths
``CASEMIX_DATA_DIR``        ``data_dir``
``CASEMIX_WAREHOUSE``       ``storage.warehouse``
``CASEMIX_STORAGE_ENGINE``  ``storage.engine``
``CASEMIX_SCHEMES_DIR``     ``schemes.dir``
``CASEMIX_SPARK_MASTER``    ``spark.master``
``MLFLOW_TRACKING_URI``     ``mlflow.tracking_uri``
``MLFLOW_REGISTRY_URI``     ``mlflow.registry_uri``
``CASEMIX_PSEUDONYM_KEY_FILE`` ``privacy.key_file``
=========================  =============================================
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "ConfigError",
    "Settings",
    "SparkSettings",
    "StorageSettings",
    "MlflowSettings",
    "SchemeSettings",
    "GroupingSettings",
    "PrivacySettings",
    "load_settings",
    "default_config_path",
    "project_root",
    "resolve_path",
    "ENV_OVERRIDES",
]

_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


class ConfigError(ValueError):
    """A configuration file is missing, unreadable or invalid.

    The message always names the file, and, for an invalid value, the dotted key and what was expected.
    """

    def __init__(self, file: str | os.PathLike, problems: list[str]):
        self.file = str(file)
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration {self.file}:\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class SparkSettings(_Strict):
    """How the Spark session is built (see :mod:`casemix.spark`)."""

    master: Optional[str] = Field(
        "local[*]", description="Spark master; null on a cluster (spark-submit's --master wins anyway)"
    )
    app_name: str = Field("casemix", description="application name prefix; the job name is appended")
    shuffle_partitions: int = Field(8, ge=1, description="spark.sql.shuffle.partitions")
    arrow_batch_size: int = Field(
        100_000, ge=1_000, description="spark.sql.execution.arrow.maxRecordsPerBatch for pandas UDFs; rows grouped "
        "at a time by the file-wise grouping"
    )
    driver_memory: Optional[str] = Field("4g", description="driver memory in local mode (e.g. 4g)")
    ui: bool = Field(False, description="start the Spark UI")
    conf: dict[str, str] = Field(default_factory=dict, description="any further spark.* settings")


class StorageSettings(_Strict):
    """Where the Delta tables live and which engine commits to them (see :mod:`casemix.storage`)."""

    engine: Literal["auto", "delta-rs", "delta-spark"] = Field(
        "auto", description="auto = delta-spark when its JVM classes are on the classpath, else delta-rs"
    )
    warehouse: str = Field("data/warehouse", description="root folder or URI; table <name> is at <warehouse>/<name>")
    commit_retries: int = Field(3, ge=0, description="delta-rs engine: retries of an append after a commit conflict")


class GroupingSettings(_Strict):
    """How the grouping job moves the claims (see :mod:`casemix.grouping.direct`)."""

    io: Literal["auto", "files", "dataframe"] = Field(
        "auto",
        description="files = each task reads its claims partitions' Parquet files, groups and writes them with "
        "Arrow (delta-rs engine only); dataframe = Spark reads claims and writes grouped_claims; "
        "auto = files with the delta-rs engine, else dataframe",
    )


class MlflowSettings(_Strict):
    """Where runs and registered models are tracked (see :mod:`casemix.tracking`)."""

    tracking_uri: Optional[str] = Field(
        None, description="null = sqlite store <data_dir>/mlflow/mlflow.db"
    )
    registry_uri: Optional[str] = Field(None, description="null = same as the tracking URI")
    artifact_root: str = Field("data/mlflow/artifacts", description="artifact folder for new experiments")


class SchemeSettings(_Strict):
    """Where the DRG grouping schemes are (folders as described in shared/schemes/README.md)."""

    dir: str = Field("../shared/schemes", description="folder holding one sub-folder per scheme id")
    cache_dir: str = Field("data/cache/schemes", description="compiled-scheme cache")
    dictionary: str = Field("chs-drg-1.1", description="scheme whose code dictionaries ingestion validates against")


class PrivacySettings(_Strict):
    """Pseudonymisation of insured-person and national id numbers (see :mod:`casemix.ingest.pseudonym`)."""

    key_env: str = Field("CASEMIX_PSEUDONYM_KEY", description="environment variable holding the secret key")
    key_file: Optional[str] = Field(None, description="file holding the secret key; must be outside the project")
    allow_demo_key: bool = Field(
        False, description="embedded demo only: without a key, use the public, clearly labelled demo key"
    )


class Settings(_Strict):
    """One environment: a parsed ``conf/<name>.yaml``."""

    name: str = Field(..., description="configuration name, recorded on every MLflow run")
    data_dir: str = Field("data", description="root of generated data, drops, reports")
    spark: SparkSettings = Field(default_factory=SparkSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    schemes: SchemeSettings = Field(default_factory=SchemeSettings)
    grouping: GroupingSettings = Field(default_factory=GroupingSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    policy: str = Field("conf/policy/default.yaml", description="policy parameter file (per province/year)")

    # where the file came from; not a configuration key
    source_file: Optional[str] = Field(None, exclude=True)
    root: Optional[str] = Field(None, exclude=True)

    def path(self, value: str) -> str:
        """Resolve a configured path against the project root (URIs are returned unchanged)."""
        return resolve_path(value, Path(self.root) if self.root else project_root())

    @property
    def data_path(self) -> str:
        return self.path(self.data_dir)

    @property
    def warehouse_path(self) -> str:
        return self.path(self.storage.warehouse)

    @property
    def schemes_path(self) -> str:
        return self.path(self.schemes.dir)

    @property
    def tracking_uri(self) -> str:
        if self.mlflow.tracking_uri:
            return self.mlflow.tracking_uri
        return "sqlite:///" + str(Path(self.data_path) / "mlflow" / "mlflow.db")

    @property
    def artifact_root(self) -> str:
        return self.path(self.mlflow.artifact_root)


#: environment variable -> dotted settings key
ENV_OVERRIDES: dict[str, str] = {
    "CASEMIX_DATA_DIR": "data_dir",
    "CASEMIX_WAREHOUSE": "storage.warehouse",
    "CASEMIX_STORAGE_ENGINE": "storage.engine",
    "CASEMIX_SCHEMES_DIR": "schemes.dir",
    "CASEMIX_SPARK_MASTER": "spark.master",
    "MLFLOW_TRACKING_URI": "mlflow.tracking_uri",
    "MLFLOW_REGISTRY_URI": "mlflow.registry_uri",
    "CASEMIX_PSEUDONYM_KEY_FILE": "privacy.key_file",
}


def project_root() -> Path:
    """The project root: ``$CASEMIX_HOME``, else the folder holding ``conf/`` above the working dir,
    else the source checkout this package was imported from, else the working directory."""
    home = os.environ.get("CASEMIX_HOME")
    if home:
        return Path(home).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "conf" / "local.yaml").is_file():
            return candidate
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "conf" / "local.yaml").is_file():
        return checkout
    return here


def default_config_path() -> Path:
    """``$CASEMIX_CONF`` or ``<project root>/conf/local.yaml``."""
    env = os.environ.get("CASEMIX_CONF")
    return Path(env) if env else project_root() / "conf" / "local.yaml"


def resolve_path(value: str, root: Path) -> str:
    if _URI.match(value) and not re.match(r"^[a-zA-Z]:[\\/]", value):
        return value
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (root / p).resolve())


def _set_dotted(doc: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = doc
    for key in parents:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            return  # the file has a wrong type there; validation reports it
    node[leaf] = value


def _describe(err: dict) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        return f"key '{key}' is not a known setting; remove it or check its spelling"
    if kind == "missing":
        return f"key '{key}' is required but missing"
    given = err.get("input")
    return f"key '{key}': {err['msg']} (got {given!r})"


def read_yaml_mapping(file: Path, missing_hint: str) -> dict:
    """A YAML file whose top level is a mapping (empty file = {}); :class:`ConfigError` naming the
    file when it is missing (with ``missing_hint``), not YAML, or not a mapping."""
    if not file.is_file():
        raise ConfigError(file, [f"{missing_hint} (looked for {file.resolve()})"])
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(file, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(doc, dict):
        raise ConfigError(file, ["top level must be a mapping"])
    return doc


def validation_error(file: str | os.PathLike, exc: ValidationError) -> ConfigError:
    """A pydantic validation error as one :class:`ConfigError` listing every key that is wrong."""
    return ConfigError(file, [_describe(e) for e in exc.errors()])


def load_settings(path: str | os.PathLike | None = None, *, env: dict[str, str] | None = None) -> Settings:
    """Load and validate one environment configuration file.

    Raises :class:`ConfigError` naming the file, key and expectation for a missing file, bad YAML,
    unknown keys, wrong types or invalid values.
    """
    env = os.environ if env is None else env
    file = Path(path) if path is not None else default_config_path()
    if not file.is_file():
        raise ConfigError(file, [f"file not found (looked for {file.resolve()}); pass --conf PATH or set CASEMIX_CONF"])
    try:
        doc = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(file, [f"not valid YAML: {exc}"]) from exc
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(file, [f"top level must be a mapping of settings, got {type(doc).__name__}"])
    internal = sorted({"source_file", "root"} & set(doc))
    if internal:
        raise ConfigError(file, [f"key '{k}' is not a known setting; remove it" for k in internal])
    for var, dotted in ENV_OVERRIDES.items():
        if env.get(var):
            _set_dotted(doc, dotted, env[var])
    if "CASEMIX_HOME" in env:
        root = Path(env["CASEMIX_HOME"]).resolve()
    else:
        resolved = file.resolve()
        root = resolved.parent.parent if resolved.parent.name == "conf" else resolved.parent
    try:
        return Settings(**doc, source_file=str(file), root=str(root))
    except ValidationError as exc:
        raise ConfigError(file, [_describe(e) for e in exc.errors()]) from None
    except TypeError as exc:  # e.g. a key that collides with a keyword
        raise ConfigError(file, [str(exc)]) from None
