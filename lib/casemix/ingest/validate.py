"""Validate raw claim records with named rules; every rule that applies adds its reason code.

``validate(raw, book, key, run_id)`` turns the raw string records of :func:`casemix.ingest.read.read_drops`
into typed, normalised records with a ``reason_codes`` array (empty = valid). Parsing and field rules
are Spark SQL expressions; the code rules (dictionary, code-version map, sex- and age-specific
diagnoses) run in :func:`check_codes`, a vectorised pandas function used as a pandas UDF.

Rules (reason codes in :mod:`casemix.ingest.raw`):

- ``MALFORMED_ROW``: the CSV line did not split into the header's columns (no other rule is applied).
- ``MISSING_FIELD``: a required field is empty; also ``age_days`` for an infant (age 0) and the birth
  weight for a newborn (age 0, ≤ 28 days), which the CHS-DRG newborn groups need.
- ``MISSING_PRINCIPAL_DX``: no principal diagnosis.
- ``INVALID_TYPE``: a date (three accepted formats) or integer field that does not parse.
- ``NON_NUMERIC_COST``: a money field that is not a number. ``NEGATIVE_COST``: a money field < 0.
- ``FUND_EXCEEDS_TOTAL``: fund-paid > total cost.
- ``DISCHARGE_BEFORE_ADMISSION``.
- ``INVALID_SEX``, ``INVALID_CATEGORY`` (险种 / 离院方式 outside their code lists).
- ``UNKNOWN_DX_CODE`` / ``UNKNOWN_PROC_CODE``: a code unknown to the dictionary after normalisation
  and the code-version map.
- ``SEX_DX_MISMATCH``: a diagnosis specific to the other sex; ``NEWBORN_DX_ADULT``: a perinatal
  diagnosis at age ≥ 18 (sets from :mod:`casemix.codes`).
- ``REGION_MISMATCH``: 统筹区 is not the drop folder's region.
- ``DUPLICATE_CLAIM_ID``: the same claim id and version again in the same drop (the first copy, in
  file and line order, is kept).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, BooleanType, StringType, StructField, StructType

from casemix.codes import CodeBook, normalise_code
from casemix.ingest import raw as R
from casemix.ingest.pseudonym import PseudonymKey, hmac_column
from casemix.tables import MONEY

__all__ = ["validate", "check_codes", "normalise_codes", "CODE_CHECK_SCHEMA"]

CODE_CHECK_SCHEMA = StructType([
    StructField("principal_dx", StringType()),
    StructField("secondary_dxs", ArrayType(StringType(), False)),
    StructField("procedures", ArrayType(StringType(), False)),
    StructField("unknown_dx", BooleanType()),
    StructField("unknown_proc", BooleanType()),
    StructField("sex_mismatch", BooleanType()),
    StructField("newborn_adult", BooleanType()),
])


#: whitespace as Python's str.split() sees it in ASCII (RE2's \s lacks \x0b and \x1c-\x1f)
_ASCII_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f ]+"


def _normalise_array(codes: pa.Array) -> pa.Array:
    """:func:`casemix.codes.normalise_code` over an Arrow string array (empty -> null): Arrow kernels
    for ASCII values; the rare non-ASCII values (full-width characters) take the Python function."""
    ascii_ = pc.fill_null(pc.string_is_ascii(codes), True)
    s = pc.ascii_upper(pc.replace_substring_regex(codes, _ASCII_SPACE, ""))
    s = pc.binary_join_element_wise(pc.utf8_slice_codeunits(s, 0, 1),
                                    pc.replace_substring(pc.utf8_slice_codeunits(s, 1), "X", "x"), "")
    if not pc.all(ascii_).as_py():
        other = np.flatnonzero(~np.asarray(ascii_.to_numpy(zero_copy_only=False), dtype=bool))
        fixed = pa.array([normalise_code(c) for c in codes.take(pa.array(other)).to_pylist()], pa.string())
        values = s.to_pylist()
        for i, v in zip(other, fixed.to_pylist()):
            values[i] = v
        s = pa.array(values, pa.string())
    return pc.if_else(pc.equal(s, ""), pa.scalar(None, pa.string()), s)


def _strings(values: pd.Series) -> pa.Array:
    return pa.array(values.astype(object).where(values.notna(), None).to_numpy(), type=pa.string(), from_pandas=True)


def normalise_codes(codes: pd.Series) -> pd.Series:
    """Vectorised :func:`casemix.codes.normalise_code` (empty -> None)."""
    return pd.Series(_normalise_array(_strings(codes)).to_numpy(zero_copy_only=False), index=codes.index,
                     dtype=object)


def _explode_codes(lists: pd.Series) -> pd.Series:
    """'|'-separated code strings -> one normalised code per row (index repeated, rows in order), empties
    dropped."""
    parts = pc.split_pattern(pc.fill_null(_strings(lists), ""), R.LIST_SEPARATOR)
    codes = _normalise_array(pc.list_flatten(parts))
    rows = np.asarray(pc.list_parent_indices(parts).to_numpy(zero_copy_only=False))
    keep = np.asarray(codes.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return pd.Series(codes.filter(pa.array(keep)).to_numpy(zero_copy_only=False), index=lists.index[rows[keep]],
                     dtype=object)


def _map_codes(codes: pd.Series, known: frozenset, mapping: dict) -> tuple[pd.Series, pd.Series]:
    direct = codes.isin(known)
    mapped = codes.where(direct, codes.map(mapping))
    ok = mapped.isin(known)
    return mapped.where(ok, codes), ok


def _any_by_row(flags: pd.Series, index: pd.Index) -> np.ndarray:
    if flags.empty:
        return np.zeros(len(index), dtype=bool)
    return flags.groupby(level=0).any().reindex(index, fill_value=False).to_numpy(dtype=bool)


def _lists_by_row(codes: pd.Series, index: pd.Index) -> list:
    """The codes of each row of ``index`` as a list (empty when none), in their order; ``codes`` carries
    its row's index label, grouped by row and in row order (as :func:`_explode_codes` returns them).
    Built as one Arrow list array from offsets (no per-row pandas groupby)."""
    rows = index.get_indexer(codes.index) if len(codes) else np.zeros(0, dtype=np.int64)
    if len(rows) and ((rows < 0).any() or (np.diff(rows) < 0).any()):
        raise ValueError("codes must be labelled with rows of the batch, in row order")
    offsets = np.zeros(len(index) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(index)), out=offsets[1:])
    values = pa.array(codes.to_numpy(dtype=object), type=pa.string())
    return pa.LargeListArray.from_arrays(pa.array(offsets, pa.int64()), values).to_pylist()


def check_codes(principal: pd.Series, secondary: pd.Series, procedures: pd.Series, sex: pd.Series,
                age_years: pd.Series, book: CodeBook) -> pd.DataFrame:
    """The code rules on a batch (vectorised; no loop over records).

    ``principal`` is one code, ``secondary`` and ``procedures`` are ``|``-separated code lists as
    received; ``sex`` is "1"/"2" (or None), ``age_years`` numeric (or NaN). Returns the normalised,
    mapped codes and one flag per rule (see :data:`CODE_CHECK_SCHEMA`).
    """
    index = principal.index
    p = normalise_codes(principal)
    p_mapped, p_ok = _map_codes(p, book.diagnoses, book.diagnosis_map)
    sec = _explode_codes(secondary)
    sec_mapped, sec_ok = _map_codes(sec, book.diagnoses, book.diagnosis_map)
    proc = _explode_codes(procedures)
    proc_mapped, proc_ok = _map_codes(proc, book.procedures, book.procedure_map)

    unknown_dx = (p.notna().to_numpy() & ~p_ok.to_numpy()) | _any_by_row(~sec_ok, index)
    unknown_proc = _any_by_row(~proc_ok, index)

    all_dx = pd.concat([p_mapped[p.notna()], sec_mapped])
    sex_of_dx = pd.Series(sex.to_numpy(dtype=object), index=index).reindex(all_dx.index)
    wrong_sex = (all_dx.isin(book.female_only) & (sex_of_dx == "1")) | (all_dx.isin(book.male_only) & (sex_of_dx == "2"))
    age = pd.to_numeric(age_years, errors="coerce")
    adult = pd.Series((age >= book.adult_age).to_numpy(dtype=bool), index=index).reindex(all_dx.index)
    newborn_adult = all_dx.isin(book.newborn_only) & adult

    return pd.DataFrame({
        "principal_dx": p_mapped.where(p.notna(), None).astype(object),
        "secondary_dxs": _lists_by_row(sec_mapped, index),
        "procedures": _lists_by_row(proc_mapped, index),
        "unknown_dx": unknown_dx,
        "unknown_proc": unknown_proc,
        "sex_mismatch": _any_by_row(wrong_sex, index),
        "newborn_adult": _any_by_row(newborn_adult, index),
    }, index=index)


def _code_udf(book: CodeBook):
    @F.pandas_udf(CODE_CHECK_SCHEMA)
    def codes(principal: pd.Series, secondary: pd.Series, procedures: pd.Series, sex: pd.Series,
              age_years: pd.Series) -> pd.DataFrame:
        return check_codes(principal, secondary, procedures, sex, age_years, book)

    # marked nondeterministic so Spark evaluates it once per row instead of once per field used
    return codes.asNondeterministic()


def _text(col: str) -> Column:
    """Trimmed text, empty -> null; full-width spaces count as spaces."""
    v = F.trim(F.translate(F.col(col), "\u3000", " "))
    return F.when(v == "", None).otherwise(v)


def _date(text: Column) -> Column:
    return F.coalesce(*[F.to_date(text, fmt) for fmt in R.DATE_FORMATS])


def _int(text: Column) -> Column:
    return F.when(text.rlike(r"^[+-]?\d+$"), text.cast("int"))


def _money(text: Column) -> Column:
    return F.when(text.rlike(r"^[+-]?(\d+(\.\d*)?|\.\d+)$"), text.cast(MONEY))


def _map_values(text: Column, mapping: dict[str, str]) -> Column:
    expr = None
    for src, dst in mapping.items():
        expr = (F.when(text == src, F.lit(dst)) if expr is None else expr.when(text == src, F.lit(dst)))
    return expr.otherwise(F.lit(None).cast("string"))


def validate(raw: DataFrame, book: CodeBook, key: PseudonymKey) -> DataFrame:
    """Typed, normalised, pseudonymised records with ``reason_codes`` (empty array = valid) and
    ``raw_record`` (the values as received, ids pseudonymised, JSON; or the malformed line)."""
    t = {f: _text(f) for f in R.RAW_FIELDS}
    df = raw.select(
        *[t[f].alias(f"t_{f}") for f in R.RAW_FIELDS],
        *[F.col(f).alias(f"raw_{f}") for f in R.RAW_FIELDS],
        "source_file", "source_format", "source_line", "drop_id", "drop_region", "_malformed", "_raw_line", "_order",
    )
    tc = lambda f: F.col(f"t_{f}")  # noqa: E731
    parsed = {
        **{f: _date(tc(f)) for f in R.DATE_FIELDS},
        **{f: _int(tc(f)) for f in R.INT_FIELDS},
        **{f: _money(tc(f)) for f in R.MONEY_FIELDS},
    }
    df = df.select(
        "*",
        *[expr.alias(f"v_{f}") for f, expr in parsed.items()],
        _map_values(F.upper(tc("sex")), R.SEX_VALUES).alias("v_sex"),
        _map_values(tc("insurance_scheme"), R.INSURANCE_SCHEMES).alias("v_insurance_scheme"),
    )
    codes = _code_udf(book)(tc("principal_dx"), tc("secondary_dxs"), tc("procedures"), F.col("v_sex"),
                            F.col("v_age_years"))
    df = df.withColumn("_codes", codes)

    v = lambda f: F.col(f"v_{f}")  # noqa: E731
    present = lambda f: tc(f).isNotNull()  # noqa: E731
    required = [f for f in R.REQUIRED_FIELDS]
    missing = F.lit(False)
    for f in required:
        missing = missing | ~present(f)
    infant = v("age_years") == 0
    missing = missing | (infant & ~present("age_days")) | (infant & (v("age_days") <= 28) & ~present("birth_weight_g"))
    bad_type = F.lit(False)
    for f in (*R.DATE_FIELDS, *R.INT_FIELDS):
        bad_type = bad_type | (present(f) & v(f).isNull())
    non_numeric = F.lit(False)
    negative = F.lit(False)
    for f in R.MONEY_FIELDS:
        non_numeric = non_numeric | (present(f) & v(f).isNull())
        negative = negative | F.coalesce(v(f) < 0, F.lit(False))
    rules = [
        (R.MISSING_FIELD, missing),
        (R.MISSING_PRINCIPAL_DX, ~present("principal_dx")),
        (R.INVALID_TYPE, bad_type),
        (R.NON_NUMERIC_COST, non_numeric),
        (R.NEGATIVE_COST, negative),
        (R.FUND_EXCEEDS_TOTAL, F.coalesce(v("fund_paid") > v("total_cost"), F.lit(False))),
        (R.DISCHARGE_BEFORE_ADMISSION, F.coalesce(v("discharge_date") < v("admission_date"), F.lit(False))),
        (R.INVALID_SEX, present("sex") & v("sex").isNull()),
        (R.INVALID_CATEGORY, (present("insurance_scheme") & v("insurance_scheme").isNull())
         | (present("discharge_status") & ~tc("discharge_status").isin(*R.DISCHARGE_STATUSES))),
        (R.UNKNOWN_DX_CODE, F.col("_codes.unknown_dx")),
        (R.UNKNOWN_PROC_CODE, F.col("_codes.unknown_proc")),
        (R.SEX_DX_MISMATCH, F.col("_codes.sex_mismatch")),
        (R.NEWBORN_DX_ADULT, F.col("_codes.newborn_adult")),
        (R.REGION_MISMATCH, present("region") & (tc("region") != F.col("drop_region"))),
    ]
    field_reasons = F.array_compact(F.array(*[F.when(cond, F.lit(code)) for code, cond in rules]))

    # duplicates: the same claim id and version again within one drop (first copy kept)
    dup_window = Window.partitionBy("drop_id", tc("claim_id"), v("claim_version")).orderBy(
        "source_file", F.col("source_line").asc_nulls_last(), "_order")
    is_dup = (tc("claim_id").isNotNull() & v("claim_version").isNotNull() & ~F.col("_malformed")
              & (F.row_number().over(dup_window) > 1))
    reasons = F.when(F.col("_malformed"), F.array(F.lit(R.MALFORMED_ROW))).otherwise(
        F.when(is_dup, F.array_append(field_reasons, F.lit(R.DUPLICATE_CLAIM_ID))).otherwise(field_reasons))

    person = hmac_column(tc("person_id"), key)
    national = hmac_column(tc("national_id"), key)
    raw_values = F.create_map(*[
        x for f in R.RAW_FIELDS for x in (
            F.lit(R.FIELD_TO_RAW[f]),
            person if f == "person_id" else national if f == "national_id" else F.col(f"raw_{f}"),
        )
    ])
    raw_record = F.when(F.col("_malformed"), F.col("_raw_line")).otherwise(F.to_json(raw_values))
    los = F.coalesce(v("los_days"), F.datediff(v("discharge_date"), v("admission_date")))
    return df.select(
        tc("claim_id").alias("claim_id"),
        v("claim_version").alias("claim_version"),
        tc("region").alias("region"),
        F.date_format(v("discharge_date"), "yyyy-MM").alias("discharge_month"),
        tc("hospital_id").alias("hospital_id"),
        person.alias("person_id"),
        national.alias("national_id"),
        v("insurance_scheme").alias("insurance_scheme"),
        v("sex").alias("sex"),
        v("birth_date").alias("birth_date"),
        v("age_years").alias("age_years"),
        v("age_days").alias("age_days"),
        v("birth_weight_g").alias("birth_weight_g"),
        v("admission_date").alias("admission_date"),
        v("discharge_date").alias("discharge_date"),
        los.cast("int").alias("los_days"),
        tc("discharge_status").alias("discharge_status"),
        tc("dept").alias("dept"),
        F.col("_codes.principal_dx").alias("principal_dx"),
        F.col("_codes.secondary_dxs").alias("secondary_dxs"),
        F.col("_codes.procedures").alias("procedures"),
        *[v(f).alias(f) for f in R.MONEY_FIELDS],
        "source_file", "source_format", "source_line", "drop_id", "drop_region",
        reasons.alias("reason_codes"),
        raw_record.alias("raw_record"),
    )
