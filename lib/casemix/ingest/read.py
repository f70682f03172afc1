"""Find raw drops and read them, CSV or Parquet, into one DataFrame of raw string fields.

Every line of a CSV file and every row of a Parquet file becomes exactly one record, including the
ones that cannot be parsed (``_malformed`` true, the line kept in ``_raw_line``), so that
records read = records accepted + rejected (+ superseded) can be checked.

CSV is read as text by Spark and split by :func:`parse_csv_lines` (pure pandas, per batch): lines
without a quote character are split vectorised, lines with quotes go through Python's ``csv``
module in strict mode, so an unbalanced quote or a wrong number of fields marks the line malformed
instead of silently shifting values (Spark's own CSV reader accepts an unbalanced quote).
Parquet files are grouped by their footer schema; each group's columns are cast to strings, so a
drop whose column has another physical type is read, and its values validated, like any other.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, LongType, StringType, StructField, StructType

from casemix.ingest.pseudonym import PseudonymKey, hmac_hex
from casemix.ingest.raw import FIELD_TO_RAW, RAW_FIELDS

__all__ = ["DropFile", "discover_drops", "read_drops", "parse_csv_lines", "RAW_SCHEMA", "DropLayoutError"]

_DROP_DIR = re.compile(r"(?:^|/)region=([^/]+)/month=(\d{4}-\d{2})(?:/|$)")
_NATIONAL_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")

#: the raw record as read: every drop field as a string, plus where it came from
RAW_SCHEMA = StructType(
    [StructField(f, StringType()) for f in RAW_FIELDS]
    + [
        StructField("source_file", StringType(), False),
        StructField("source_format", StringType(), False),
        StructField("source_line", LongType()),
        StructField("drop_id", StringType(), False),
        StructField("drop_region", StringType(), False),
        StructField("_malformed", BooleanType(), False),
        StructField("_raw_line", StringType()),
        StructField("_order", LongType(), False),
    ]
)


class DropLayoutError(ValueError):
    """Input files that are not inside a ``region=<code>/month=<YYYY-MM>`` drop folder."""


@dataclass(frozen=True)
class DropFile:
    path: str          # absolute local path or URI
    format: str        # "csv" | "parquet"
    region: str
    month: str

    @property
    def drop_id(self) -> str:
        return f"{self.region}/{self.month}"


def _fs_and_path(uri: str) -> tuple[pafs.FileSystem, str]:
    return pafs.FileSystem.from_uri(uri if "://" in uri else "file://" + uri)


def discover_drops(paths: Iterable[str]) -> list[DropFile]:
    """Every ``.csv`` / ``.parquet`` file under ``paths`` (drops roots, drop folders or files),
    skipping hidden and ``_``-prefixed files and folders (e.g. the generator's ``_defects``)."""
    found: list[DropFile] = []
    outside: list[str] = []
    for root in paths:
        fs, base = _fs_and_path(root)
        info = fs.get_file_info(base)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"no such drop path: {root}")
        infos = [info] if info.type == pafs.FileType.File else fs.get_file_info(pafs.FileSelector(base, recursive=True))
        prefix = root[: len(root) - len(base)] if "://" in root else ""
        for i in infos:
            if i.type != pafs.FileType.File:
                continue
            rel = i.path[len(base):] if i.path.startswith(base) else i.path
            if any(part.startswith(("_", ".")) for part in rel.split("/") if part):
                continue
            ext = i.path.rsplit(".", 1)[-1].lower()
            if ext not in ("csv", "parquet"):
                continue
            m = _DROP_DIR.search(i.path)
            if not m:
                outside.append(i.path)
                continue
            found.append(DropFile(prefix + i.path, ext, m.group(1), m.group(2)))
    if outside:
        raise DropLayoutError(
            f"{len(outside)} file(s) are not inside a region=<code>/month=<YYYY-MM> drop folder, e.g. {outside[0]}; "
            "move them into their drop folder"
        )
    return sorted(set(found), key=lambda d: d.path)


def _first_line(path: str) -> str:
    fs, p = _fs_and_path(path)
    with fs.open_input_stream(p) as handle:
        head = handle.read(1 << 16).decode("utf-8", errors="replace")
    return head.splitlines()[0].lstrip("\ufeff") if head else ""


def _plain(path: str) -> str:
    path = unquote(path)
    for prefix in ("file://", "file:"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def _mask_ids(line: str, header: list[str], key: PseudonymKey) -> str:
    """A malformed line as stored: person and national ids found in it replaced by their pseudonyms."""
    try:
        fields = next(csv.reader([line], strict=False))
    except csv.Error:
        fields = []
    for name in ("person_id", "national_id"):
        raw_name = FIELD_TO_RAW[name]
        if raw_name in header:
            pos = header.index(raw_name)
            if pos < len(fields) and fields[pos].strip():
                line = line.replace(fields[pos].strip(), hmac_hex(fields[pos].strip(), key))
    return _NATIONAL_ID.sub(lambda m: hmac_hex(m.group(0), key), line)


def parse_csv_lines(lines: pd.Series, header: list[str], key: PseudonymKey) -> pd.DataFrame:
    """Split CSV lines of one file with the given header (Chinese column names).

    Returns one row per input line with a column per drop field (None where the file has no such
    column), ``_malformed`` and ``_raw_line`` (only for malformed lines, ids pseudonymised).
    """
    n_cols = len(header)
    lines = lines.astype(object).fillna("").str.rstrip("\r")
    quoted = lines.str.contains('"', regex=False).to_numpy()
    values = np.full((len(lines), n_cols), None, dtype=object)
    malformed = np.zeros(len(lines), dtype=bool)

    plain_idx = np.flatnonzero(~quoted)
    if len(plain_idx):
        split = lines.iloc[plain_idx].str.split(",", regex=False)
        counts = split.str.len().to_numpy()
        ok = counts == n_cols
        malformed[plain_idx[~ok]] = True
        good = plain_idx[ok]
        if len(good):
            values[good] = np.array(split[ok].tolist(), dtype=object).reshape(len(good), n_cols)
    for i in np.flatnonzero(quoted):
        try:
            fields = next(csv.reader([lines.iat[i]], strict=True))
        except (csv.Error, StopIteration):
            malformed[i] = True
            continue
        if len(fields) != n_cols:
            malformed[i] = True
        else:
            values[i] = fields

    out = {}
    for field in RAW_FIELDS:
        raw_name = FIELD_TO_RAW[field]
        out[field] = values[:, header.index(raw_name)] if raw_name in header else np.full(len(lines), None, dtype=object)
    frame = pd.DataFrame(out, index=lines.index)
    frame["_malformed"] = malformed
    frame["_raw_line"] = [(_mask_ids(lines.iat[i], header, key) if malformed[i] else None) for i in range(len(lines))]
    return frame


def _read_csv(spark: SparkSession, files: list[DropFile], key: PseudonymKey) -> Optional[DataFrame]:
    if not files:
        return None
    headers = {_plain(f.path): _first_line(f.path) for f in files}
    parsed_headers = {p: next(csv.reader([h])) for p, h in headers.items()}
    drops = {_plain(f.path): f for f in files}
    text = (spark.read.text([f.path for f in files])
            .select(F.col("value"), F.col("_metadata.file_path").alias("_file")))
    out_schema = RAW_SCHEMA

    def parse(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            for file_uri, part in batch.groupby("_file", sort=False):
                path = _plain(file_uri)
                header_line = headers[path]
                header = parsed_headers[path]
                lines = part["value"]
                lines = lines[(lines.str.lstrip("\ufeff") != header_line) & (lines.str.strip() != "")]
                frame = parse_csv_lines(lines, header, key)
                drop = drops[path]
                frame["source_file"] = path
                frame["source_format"] = "csv"
                frame["source_line"] = None
                frame["drop_id"] = drop.drop_id
                frame["drop_region"] = drop.region
                frame["_order"] = part.loc[lines.index, "_order"].to_numpy()
                yield frame[out_schema.fieldNames()]

    return text.withColumn("_order", F.monotonically_increasing_id()).mapInPandas(parse, out_schema)


def _read_parquet(spark: SparkSession, files: list[DropFile]) -> Optional[DataFrame]:
    if not files:
        return None
    groups: dict[tuple, list[DropFile]] = {}
    for f in files:
        fs, p = _fs_and_path(f.path)
        with fs.open_input_file(p) as handle:
            schema = pq.read_schema(handle)
        groups.setdefault(tuple((n, str(t)) for n, t in zip(schema.names, schema.types)), []).append(f)
    parts = []
    for columns, group in groups.items():
        names = {n for n, _ in columns}
        df = spark.read.parquet(*[f.path for f in group])
        path_to_drop = spark.createDataFrame(
            [(_plain(f.path), f.drop_id, f.region) for f in group], "p string, drop_id string, drop_region string")
        df = df.select(
            *[(F.col(f"`{FIELD_TO_RAW[field]}`").cast("string") if FIELD_TO_RAW[field] in names
               else F.lit(None).cast("string")).alias(field) for field in RAW_FIELDS],
            F.regexp_replace(F.col("_metadata.file_path"), r"^file:(//)?", "").alias("source_file"),
            (F.col("_metadata.row_index") + 1).alias("source_line"),
        )
        df = df.join(F.broadcast(path_to_drop), F.col("source_file") == F.col("p"), "left").drop("p")
        parts.append(df.select(
            *RAW_FIELDS, "source_file", F.lit("parquet").alias("source_format"), "source_line",
            "drop_id", "drop_region", F.lit(False).alias("_malformed"), F.lit(None).cast("string").alias("_raw_line"),
            F.monotonically_increasing_id().alias("_order"),
        ))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def read_drops(spark: SparkSession, files: list[DropFile], key: PseudonymKey) -> DataFrame:
    """All records of the given drop files as one DataFrame with :data:`RAW_SCHEMA`."""
    parts = [p for p in (_read_csv(spark, [f for f in files if f.format == "csv"], key),
                         _read_parquet(spark, [f for f in files if f.format == "parquet"])) if p is not None]
    if not parts:
        return spark.createDataFrame([], RAW_SCHEMA)
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out
