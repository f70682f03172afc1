"""Pseudonymisation: insured-person ids and national id numbers are replaced by a keyed hash
(HMAC-SHA256, hex) before anything is stored.

The key comes from the environment variable named by ``privacy.key_env`` or from the file
``privacy.key_file`` (which must lie outside the project). Without a key a job refuses to run,
except on the embedded demo (``privacy.allow_demo_key: true``), which uses :data:`DEMO_KEY`, a
public key that is labelled as such on every run: its pseudonyms protect nothing.

The HMAC is computed with Spark SQL expressions (no Python per row): with the key padded to the
SHA-256 block, ``HMAC(k, m) = SHA256((k ^ opad) || SHA256((k ^ ipad) || m))``; :func:`hmac_hex`
is the same function in Python and the tests check that both agree.
"""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column
from pyspark.sql import functions as F

from casemix.config import Settings

__all__ = ["PseudonymKey", "load_key", "hmac_column", "hmac_hex", "DEMO_KEY", "MissingKeyError"]

DEMO_KEY = b"casemix-PUBLIC-DEMO-KEY-not-a-secret-do-not-use-in-production"
_BLOCK = 64


class MissingKeyError(RuntimeError):
    """No pseudonymisation key is configured for a run that is not the embedded demo."""


@dataclass(frozen=True)
class PseudonymKey:
    secret: bytes
    label: str  # "env:<VAR>", "file:<path>" or "demo"

    @property
    def is_demo(self) -> bool:
        return self.label == "demo"

    def __repr__(self) -> str:  # never print the secret
        return f"PseudonymKey(label={self.label!r})"


def load_key(settings: Settings, env: dict[str, str] | None = None) -> PseudonymKey:
    env = os.environ if env is None else env
    privacy = settings.privacy
    value = env.get(privacy.key_env)
    if value:
        return PseudonymKey(value.encode("utf-8"), f"env:{privacy.key_env}")
    if privacy.key_file:
        path = Path(settings.path(privacy.key_file))
        root = Path(settings.root or ".").resolve()
        if path.resolve().is_relative_to(root):
            raise MissingKeyError(
                f"privacy.key_file {path} is inside the project folder {root}; keep the key outside the repository"
            )
        if not path.is_file():
            raise MissingKeyError(f"privacy.key_file {path} does not exist")
        secret = path.read_bytes().strip()
        if not secret:
            raise MissingKeyError(f"privacy.key_file {path} is empty")
        return PseudonymKey(secret, f"file:{path}")
    if privacy.allow_demo_key:
        return PseudonymKey(DEMO_KEY, "demo")
    raise MissingKeyError(
        f"no pseudonymisation key: set the environment variable {privacy.key_env} or privacy.key_file "
        f"(outside the repository) in {settings.source_file}; only the embedded demo may run without one"
    )


def _pads(secret: bytes) -> tuple[bytes, bytes]:
    key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_column(value: Column, key: PseudonymKey) -> Column:
    """HMAC-SHA256 (lower-case hex) of a string column's UTF-8 bytes; null stays null."""
    inner_pad, outer_pad = _pads(key.secret)
    inner = F.unhex(F.sha2(F.concat(F.lit(inner_pad), value.cast("binary")), 256))
    out = F.sha2(F.concat(F.lit(outer_pad), inner), 256)
    return F.when(value.isNull(), F.lit(None).cast("string")).otherwise(out)


def hmac_hex(value: str, key: PseudonymKey) -> str:
    return hmac.new(key.secret, value.encode("utf-8"), hashlib.sha256).hexdigest()
