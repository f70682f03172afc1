"""Counter-based random numbers: every draw is a pure function of (seed, key, field salt).

There is no random state. A draw for record ``id`` and field ``salt`` is
``mix64(mix64(id * GOLDEN ^ k(seed, salt)) + k(seed, salt))``, where ``mix64`` is the splitmix64
finaliser (a bijection of 64-bit integers with full avalanche) and ``k(seed, salt)`` a 64-bit key taken
from a BLAKE2b digest of the seed and the salt text. So a record's values do not depend on which
partition, batch or machine computes it, nor on what was drawn before: the same seed and spec give the
same records with 2 or 2,000 partitions, and 100 M records need no more driver memory than 1,000.

Everything is vectorised over numpy ``uint64`` arrays (multiplication wraps modulo 2^64, as
splitmix64 requires). :class:`Draws` binds a seed and an array of keys (record ids, or any other
64-bit identity such as ``region << 40 | person``) and hands out uniforms, normals, integers and
choices per salt; sub-draws of one field (the j-th secondary diagnosis, the k-th candidate person) use
``salt#j``.
"""
from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

__all__ = ["mix64", "salt_key", "Draws", "uniform_from_bits", "cdf_from_weights", "zipf_weights", "from_pool"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TWO53 = float(2**53)

_KEYS: dict[tuple[int, str], np.uint64] = {}


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (returns a new array)."""
    z = np.asarray(x, dtype=np.uint64)
    z = z ^ (z >> _S30)
    z = z * _C1
    z ^= z >> _S27
    z *= _C2
    z ^= z >> _S31
    return z


def salt_key(seed: int, salt: str) -> np.uint64:
    """The 64-bit key of (seed, salt): stable across processes, platforms and Python versions."""
    k = (int(seed), salt)
    key = _KEYS.get(k)
    if key is None:
        digest = hashlib.blake2b(f"casemix-generate:{int(seed)}:{salt}".encode("utf-8"), digest_size=8).digest()
        key = _KEYS[k] = np.uint64(int.from_bytes(digest, "little"))
    return key


def uniform_from_bits(h: np.ndarray) -> np.ndarray:
    """53 high bits of a uint64 hash -> float64 uniform in (0, 1) (never exactly 0 or 1)."""
    return ((h >> _S11).astype(np.float64) + 0.5) / _TWO53


def cdf_from_weights(weights: Sequence[float] | np.ndarray) -> np.ndarray:
    """Cumulative weights normalised to end at 1.0 (raises when every weight is 0)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or (w < 0).any() or w.sum() <= 0:
        raise ValueError("weights must be a non-empty 1-d array of non-negative numbers with a positive sum")
    c = np.cumsum(w)
    return c / c[-1]


def zipf_weights(n: int, exponent: float) -> np.ndarray:
    """(rank + 1) ** -exponent for ranks 0..n-1."""
    return (np.arange(1, n + 1, dtype=np.float64)) ** (-float(exponent))


def from_pool(pool: np.ndarray, cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Items of ``pool`` drawn with its normalised CDF from uniforms ``u`` (int64)."""
    return pool[np.minimum(np.searchsorted(cdf, u, side="right"), len(pool) - 1)].astype(np.int64)


class Draws:
    """Random numbers for one array of keys (e.g. the record ids of a batch), one salt per field."""

    __slots__ = ("seed", "keys", "_mixed")

    def __init__(self, seed: int, keys: np.ndarray):
        self.seed = int(seed)
        self.keys = np.asarray(keys).astype(np.uint64, copy=False)
        self._mixed = self.keys * _GOLDEN

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, index: np.ndarray) -> "Draws":
        return Draws(self.seed, self.keys[index])

    def bits(self, salt: str) -> np.ndarray:
        key = salt_key(self.seed, salt)
        return mix64(mix64(self._mixed ^ key) + key)

    def uniform(self, salt: str) -> np.ndarray:
        """float64 in (0, 1)."""
        return uniform_from_bits(self.bits(salt))

    def normal(self, salt: str) -> np.ndarray:
        """Standard normal (Box-Muller from two independent uniforms)."""
        u1 = self.uniform(salt + ".1")
        u2 = self.uniform(salt + ".2")
        return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)

    def integers(self, salt: str, n) -> np.ndarray:
        """int64 uniform in [0, n) (``n`` a positive scalar or an array broadcastable to the keys)."""
        n = np.asarray(n)
        out = np.floor(self.uniform(salt) * n).astype(np.int64)
        return np.minimum(out, np.maximum(n.astype(np.int64) - 1, 0))

    def choice(self, salt: str, cdf: np.ndarray) -> np.ndarray:
        """Index drawn from a normalised cumulative distribution (see :func:`cdf_from_weights`)."""
        idx = np.searchsorted(cdf, self.uniform(salt), side="right")
        return np.minimum(idx, len(cdf) - 1).astype(np.int64)

    def choice_rows(self, salt: str, cdfs: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Per key, an index drawn from ``cdfs[row[i]]`` (a 2-d array of normalised CDFs, one per row)."""
        u = self.uniform(salt)
        idx = (u[:, None] >= cdfs[row]).sum(axis=1)
        return np.minimum(idx, cdfs.shape[1] - 1).astype(np.int64)

    def poisson(self, salt: str, mean: np.ndarray, cap: int) -> np.ndarray:
        """Poisson(mean) truncated at ``cap`` by inversion (vectorised over ``cap + 1`` terms)."""
        mean = np.broadcast_to(np.asarray(mean, dtype=np.float64), self.keys.shape)
        u = self.uniform(salt)
        term = np.exp(-mean)
        cdf = term.copy()
        k = np.zeros(len(u), dtype=np.int64)
        for i in range(1, cap + 1):
            k += (u > cdf)
            term = term * mean / i
            cdf = cdf + term
        return k
