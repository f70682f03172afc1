"""Vectorised text rendering for the raw drops (pyarrow compute, no per-record Python).

Money is rendered from integer fen (``12345`` -> ``"123.45"``), dates in one of the
:data:`casemix.ingest.raw.DATE_FORMATS` per row, code lists joined with ``|``; the source-format quirks
hospitals produce (lower case, full-width characters, spaces) are applied to a subset of rows. Every
quirk is undone by :func:`casemix.codes.normalise_code` and the list splitting of ingestion.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from casemix.generate.dates import ymd
from casemix.ingest.raw import LIST_SEPARATOR

__all__ = ["int_str", "money_str", "date_str", "impossible_date_str", "code_lists", "apply_code_quirks",
           "QUIRKS", "join", "csv_lines"]

#: source-format quirks on codes: none, lower case, full-width digits and dot, spaces around, space inside
QUIRKS = ("none", "lower", "fullwidth", "outer_spaces", "inner_space")
_DATE_SEPARATORS = pa.array(["-", "", "/"], type=pa.string())
_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789."}


def join(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays / scalars."""
    return pc.binary_join_element_wise(*parts, "")


def int_str(values: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())


def money_str(fen: np.ndarray) -> pa.Array:
    """Integer fen -> decimal yuan text with two decimals (negative values get a leading minus)."""
    fen = np.asarray(fen, dtype=np.int64)
    mag = np.abs(fen)
    text = pc.binary_join_element_wise(int_str(mag // 100), pc.utf8_lpad(int_str(mag % 100), 2, "0"), ".")
    if (fen < 0).any():
        text = pc.if_else(pa.array(fen < 0), join("-", text), text)
    return text


def _date_parts(days: np.ndarray) -> tuple[pa.Array, pa.Array, pa.Array]:
    y, m, d = ymd(days)
    return int_str(y), pc.utf8_lpad(int_str(m), 2, "0"), pc.utf8_lpad(int_str(d), 2, "0")


def date_str(days: np.ndarray, style: np.ndarray) -> pa.Array:
    """Day numbers -> text in style 0 ``yyyy-MM-dd``, 1 ``yyyyMMdd``, 2 ``yyyy/MM/dd``."""
    y, m, d = _date_parts(days)
    sep = _DATE_SEPARATORS.take(pa.array(np.asarray(style, dtype=np.int64)))
    return pc.binary_join_element_wise(y, sep, m, sep, d, "")


def impossible_date_str(days: np.ndarray, style: np.ndarray) -> pa.Array:
    """February 30th of the year of ``days``, in the row's date style: parses as a date pattern, is no date."""
    y, _m, _d = _date_parts(days)
    sep = _DATE_SEPARATORS.take(pa.array(np.asarray(style, dtype=np.int64)))
    return pc.binary_join_element_wise(y, sep, "02", sep, "30", "")


def code_lists(vocab: pa.Array, matrix: np.ndarray) -> tuple[pa.ListArray, pa.Array]:
    """An [n, k] matrix of code indices (-1 = empty slot) -> (list<string> array, '|'-joined text or null)."""
    mask = matrix >= 0
    counts = mask.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    values = vocab.take(pa.array(matrix[mask].astype(np.int64)))
    lists = pa.ListArray.from_arrays(pa.array(offsets), values)
    text = pc.binary_join(lists, LIST_SEPARATOR)
    text = pc.if_else(pa.array(counts > 0), text, pa.scalar(None, pa.string()))
    return lists, text


def _fullwidth(a: pa.Array) -> pa.Array:
    for half, full in _FULLWIDTH.items():
        a = pc.replace_substring(a, half, full)
    return a


def _quirk(a: pa.Array, kind: str) -> pa.Array:
    if kind == "lower":
        return pc.utf8_lower(a)
    if kind == "fullwidth":
        return _fullwidth(a)
    if kind == "outer_spaces":
        return join(" ", pc.replace_substring(a, LIST_SEPARATOR, f" {LIST_SEPARATOR} "), "\u3000")
    if kind == "inner_space":
        return pc.replace_substring(a, ".", ". ")
    return a


def apply_code_quirks(a: pa.Array, quirk: np.ndarray) -> pa.Array:
    """Apply quirk ``QUIRKS[quirk[i]]`` to row i (only rows with a quirk are transformed)."""
    for k, kind in enumerate(QUIRKS):
        if kind == "none":
            continue
        mask = quirk == k
        if not mask.any():
            continue
        sub = _quirk(a.filter(pa.array(mask)), kind)
        a = pc.replace_with_mask(a, pa.array(mask), sub)
    return a


def _csv_cell(a: pa.Array) -> pa.Array:
    text = pc.fill_null(a, "")
    quoted = join('"', pc.replace_substring(text, '"', '""'), '"')
    return pc.if_else(pc.match_substring_regex(text, '[",\r\n]'), quoted, text)


def csv_lines(columns: list[pa.Array], keep_fields: np.ndarray | None = None) -> pa.Array:
    """RFC-4180 CSV lines (no line end) of the rows of ``columns``: a value holding a comma, a quote or a
    line break is quoted with its quotes doubled; null is empty. ``keep_fields[i] > 0`` cuts line ``i``
    after its first ``keep_fields[i]`` fields (a malformed, truncated line)."""
    cells = [_csv_cell(a) for a in columns]
    lines = pc.binary_join_element_wise(*cells, ",")
    if keep_fields is not None:
        for k in np.unique(keep_fields[keep_fields > 0]):
            mask = pa.array(keep_fields == k)
            cut = pc.binary_join_element_wise(*[c.filter(mask) for c in cells[:int(k)]], ",")
            lines = pc.replace_with_mask(lines, mask, cut)
    return lines
