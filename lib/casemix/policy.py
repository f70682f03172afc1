"""Policy parameters per province (``conf/policy/<province>.yaml``), typed and validated.

Errors name the file and key, like :mod:`casemix.config`.
"""
from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Optional

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from casemix.config import ConfigError, Settings, _describe

__all__ = ["Policy", "GroupingPolicy", "SchemeRule", "load_policy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SchemeRule(_Strict):
    """Claims of ``regions`` discharged on or after ``effective_from`` are grouped with ``scheme``."""

    scheme: str
    regions: tuple[str, ...] = Field(..., min_length=1)
    effective_from: date

    @field_validator("regions", mode="before")
    @classmethod
    def _as_strings(cls, value):
        return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else value


class GroupingPolicy(_Strict):
    default_scheme: str = "chs-drg-1.1"
    model_alias: str = "production"
    rules: tuple[SchemeRule, ...] = ()

    def scheme_for(self, region: str, discharge: date) -> str:
        """The scheme of one claim (the same rule the grouping job applies as a column expression)."""
        best: Optional[SchemeRule] = None
        for rule in self.rules:
            if region in rule.regions and discharge >= rule.effective_from:
                if best is None or rule.effective_from > best.effective_from:
                    best = rule
        return best.scheme if best else self.default_scheme

    @property
    def schemes(self) -> list[str]:
        return sorted({self.default_scheme, *(r.scheme for r in self.rules)})


class Policy(_Strict):
    province: str
    grouping: GroupingPolicy = Field(default_factory=GroupingPolicy)


def load_policy(settings_or_path: Settings | str | os.PathLike) -> Policy:
    path = Path(settings_or_path.path(settings_or_path.policy)) if isinstance(settings_or_path, Settings) \
        else Path(settings_or_path)
    if not path.is_file():
        raise ConfigError(path, [f"policy file not found (looked for {path.resolve()})"])
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML: {exc}"]) from exc
    if not isinstance(doc, dict):
        raise ConfigError(path, ["top level must be a mapping"])
    try:
        return Policy(**doc)
    except ValidationError as exc:
        raise ConfigError(path, [_describe(e) for e in exc.errors()]) from None
