"""The table catalogue: every Delta table the project writes, defined once.

Each :class:`TableDef` gives the table's name, Spark schema, partition columns, merge keys, the
column that orders versions of the same key (latest wins), whether downstream systems follow it
through the change data feed, and a one-line description. Every reader and writer goes through
:data:`CATALOGUE` (see :mod:`casemix.storage`); the README's table list is generated from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pyarrow as pa
from pyspark.sql.pandas.types import to_arrow_schema
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

__all__ = ["TableDef", "CATALOGUE", "table", "register", "MONEY", "UnknownTableError"]

#: money: yuan with two decimals (fen); 14 digits cover any single claim or hospital-year amount
MONEY = DecimalType(18, 2)


class UnknownTableError(KeyError):
    """A table name that is not in the catalogue."""


@dataclass(frozen=True)
class TableDef:
    name: str
    schema: StructType
    description: str
    partition_by: tuple[str, ...] = ()
    merge_keys: tuple[str, ...] = ()
    #: when merging, a source row replaces a target row with the same key only if its value here is >=
    version_column: Optional[str] = None
    #: downstream systems follow this table's changes (delta.enableChangeDataFeed)
    change_feed: bool = False
    #: bookkeeping columns (run ids, load times) that do not make two rows different in a merge
    audit_columns: tuple[str, ...] = ()
    #: columns with about one distinct value per row: Parquet files written by casemix itself (not by
    #: Spark) store them without dictionary encoding, which would only be tried and dropped
    plain_columns: tuple[str, ...] = ()
    #: columns of random text (hex digests: the pseudonyms) that compression does not shrink (~3 % for
    #: snappy on pseudonyms): such Parquet files store them uncompressed
    incompressible_columns: tuple[str, ...] = ()
    #: the only columns whose statistics (min, max, null count) the table's Delta log keeps, and its
    #: Parquet files where casemix writes them itself (the file-wise grouping); None: every column.
    #: Set on the table as Delta's ``delta.dataSkippingStatsColumns`` when the table is created (a
    #: table created before keeps Delta's default), so that delta-spark collects the same. Computing
    #: min/max of a text column costs about as much as compressing it, and is only worth it where
    #: values cluster by file. (Files casemix writes keep the partition columns' statistics too: the
    #: store reads the partition values from them.)
    stats_columns: Optional[tuple[str, ...]] = None
    properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = self.schema.fieldNames()
        for col in (*self.partition_by, *self.merge_keys, *([self.version_column] if self.version_column else []),
                    *self.plain_columns, *self.incompressible_columns, *(self.stats_columns or ())):
            if col not in names:
                raise ValueError(f"table {self.name}: column {col!r} is not in its schema")
        if self.stats_columns and len(set(self.stats_columns)) < len(self.stats_columns):
            raise ValueError(f"table {self.name}: a stats column is named twice in {self.stats_columns}")
        for col in self.stats_columns or ():
            # what Delta can skip data on (delta-spark refuses the property for other columns)
            if col in self.partition_by or not isinstance(
                    self.schema[col].dataType,
                    (StringType, IntegerType, LongType, DecimalType, DateType, TimestampType)):
                raise ValueError(f"table {self.name}: stats column {col!r} is a partition column or of a type "
                                 f"Delta keeps no statistics for ({self.schema[col].dataType.simpleString()})")

    @property
    def columns(self) -> list[str]:
        return self.schema.fieldNames()

    @property
    def content_columns(self) -> list[str]:
        """Columns compared to decide whether a merged row changed (all but the audit columns)."""
        return [c for c in self.columns if c not in self.audit_columns] if self.audit_columns else []

    @property
    def data_columns(self) -> list[str]:
        return [c for c in self.columns if c not in self.partition_by]

    def field(self, name: str) -> StructField:
        return self.schema[name]

    @property
    def arrow_schema(self) -> pa.Schema:
        """The schema as Arrow arrays of the table's rows have it (Spark's conversion: timestamps in
        UTC, 32-bit offsets): what Parquet files of the table hold, whoever writes them."""
        return to_arrow_schema(self.schema, timezone="UTC", prefers_large_types=False)

    @property
    def table_properties(self) -> dict[str, str]:
        props = dict(self.properties)
        if self.change_feed:
            props["delta.enableChangeDataFeed"] = "true"
        if self.stats_columns is not None:
            props["delta.dataSkippingStatsColumns"] = ",".join(self.stats_columns)
        return props

    def keeps_stats(self, column: str) -> bool:
        """Whether files of the table keep statistics for ``column`` (see ``stats_columns``)."""
        return self.stats_columns is None or column in self.stats_columns


def _schema(*fields: tuple) -> StructType:
    out = []
    for spec in fields:
        name, dtype = spec[0], spec[1]
        nullable = spec[2] if len(spec) > 2 else True
        out.append(StructField(name, dtype, nullable))
    return StructType(out)


S, I, L, D, B, T = StringType(), IntegerType(), LongType(), DateType(), BooleanType(), TimestampType()
CODES: DataType = ArrayType(StringType(), containsNull=False)

CATALOGUE: dict[str, TableDef] = {}


def register(definition: TableDef) -> TableDef:
    if definition.name in CATALOGUE:
        raise ValueError(f"table {definition.name} is defined twice")
    CATALOGUE[definition.name] = definition
    return definition


def table(name: str) -> TableDef:
    """The definition of a catalogued table, by name."""
    try:
        return CATALOGUE[name]
    except KeyError:
        raise UnknownTableError(
            f"no table named {name!r} in the catalogue; known tables: {', '.join(sorted(CATALOGUE))}"
        ) from None


#: the inpatient settlement-list fields every stage after ingestion relies on (医保结算清单)
_CLAIM_FIELDS: tuple[tuple, ...] = (
    ("claim_id", S, False),
    ("claim_version", I, False),
    ("region", S, False),
    ("discharge_month", S, False),
    ("hospital_id", S, False),
    ("person_id", S, False),
    ("national_id", S),
    ("insurance_scheme", S, False),
    ("sex", S, False),
    ("birth_date", D),
    ("age_years", I, False),
    ("age_days", I),
    ("birth_weight_g", I),
    ("admission_date", D, False),
    ("discharge_date", D, False),
    ("los_days", I, False),
    ("discharge_status", S, False),
    ("dept", S),
    ("principal_dx", S, False),
    ("secondary_dxs", CODES, False),
    ("procedures", CODES, False),
    ("total_cost", MONEY, False),
    ("fund_paid", MONEY, False),
    ("self_pay", MONEY, False),
    ("out_of_pocket", MONEY, False),
    ("drug_cost", MONEY),
    ("consumable_cost", MONEY),
    ("exam_cost", MONEY),
)

CLAIMS = register(
    TableDef(
        name="claims",
        description="valid inpatient settlement lists (医保结算清单), one row per claim id, latest version wins",
        schema=_schema(
            *_CLAIM_FIELDS,
            ("source_file", S, False),
            ("ingest_run_id", S, False),
            ("ingested_at", T, False),
        ),
        partition_by=("region", "discharge_month"),
        merge_keys=("claim_id",),
        version_column="claim_version",
        change_feed=True,
        audit_columns=("source_file", "ingest_run_id", "ingested_at"),
    )
)

CLAIMS_REJECTED = register(
    TableDef(
        name="claims_rejected",
        description="every input record ingestion rejected, with all reason codes and the raw values as received",
        schema=_schema(
            ("drop_id", S, False),
            ("source_file", S, False),
            ("source_format", S, False),
            ("source_line", L),
            ("claim_id", S),
            ("region", S),
            ("hospital_id", S),
            ("reason_codes", ArrayType(StringType(), containsNull=False), False),
            ("raw_record", S, False),
            ("ingest_run_id", S, False),
            ("rejected_at", T, False),
        ),
        partition_by=("drop_id",),
        change_feed=True,
    )
)

INGEST_QUALITY = register(
    TableDef(
        name="ingest_quality",
        description="data-quality summary of every ingest run: records read, accepted, rejected and per reason code, "
        "per drop and hospital",
        schema=_schema(
            ("ingest_run_id", S, False),
            ("drop_id", S, False),
            ("region", S, False),
            ("hospital_id", S),
            ("measure", S, False),
            ("records", L, False),
        ),
        partition_by=("ingest_run_id",),
    )
)

GROUPED_CLAIMS = register(
    TableDef(
        name="grouped_claims",
        description="claims with their DRG (scheme, MDC, ADRG, DRG, status, MCC/CC, rule trace)",
        schema=_schema(
            *_CLAIM_FIELDS,
            ("scheme_id", S, False),
            ("scheme_model_version", S),
            ("mdc", S),
            ("adrg", S),
            ("drg", S),
            ("group_status", S, False),
            ("has_mcc", B, False),
            ("has_cc", B, False),
            ("cc_code", S),
            ("invalid_reason", S),
            ("trace", S, False),
            ("group_run_id", S, False),
            ("grouped_at", T, False),
        ),
        partition_by=("region", "discharge_month"),
        merge_keys=("claim_id",),
        change_feed=True,
        plain_columns=("claim_id", "person_id", "national_id"),
        incompressible_columns=("person_id", "national_id"),
        # where values cluster by file (claims of a region and month, hospitals of a region, dates,
        # runs): min/max of codes, DRGs or statuses would skip nothing, and cost ~10 % of the write
        stats_columns=("claim_id", "claim_version", "hospital_id", "admission_date", "discharge_date",
                       "group_run_id", "grouped_at"),
    )
)


SYNTHETIC_TRUE_COSTS = register(
    TableDef(
        name="synthetic_true_costs",
        description="generator only: the hidden true mean cost and relative cost of every DRG, to check calibration against",
        schema=_schema(
            ("scheme_id", S, False),
            ("drg", S, False),
            ("adrg", S, False),
            ("true_mean_cost", MONEY, False),
            ("true_relative_cost", DecimalType(12, 6), False),
            ("generator_seed", L, False),
            ("generate_run_id", S, False),
        ),
        partition_by=("scheme_id",),
        merge_keys=("scheme_id", "drg"),
    )
)


# -- relative-weight calibration (casemix.calibrate) ------------------------------------------------
# Runs are kept side by side: every calibration writes its own partition (calibration_run_id = the
# MLflow run id), replaced as a whole when the same run id writes again. Scoring reads only the runs
# promoted in `promoted_weights` (casemix.calibrate.promoted_weights).
from pyspark.sql.types import DoubleType  # noqa: E402 - kept with the tables that use it

D64 = DoubleType()

RELATIVE_WEIGHTS = register(
    TableDef(
        name="relative_weights",
        description="relative weights (相对权重) and base points per region, target year and DRG of every "
        "calibration run",
        schema=_schema(
            ("calibration_run_id", S, False),
            ("region", S, False),
            ("target_year", I, False),
            ("scheme_id", S, False),
            ("mdc", S),
            ("adrg", S),
            ("drg", S, False),
            ("cases_raw", L, False),               # grouped, not excluded, all data years, before trimming
            ("cases_after_trimming", L, False),
            ("cases_weighted", D64, False),        # Σ year weight (weights sum to 1): expected cases per year
            ("trimmed_mean_cost", MONEY),          # year-weighted mean of the kept cases; null without cases
            ("cv", D64),                           # SD / mean of the kept cases; null below 2 kept cases
            ("region_weight", D64),                # RW from the region's own cases; null without cases
            ("province_weight", D64, False),       # RW from all regions' cases (same scheme and DRG)
            ("tilt_factor", D64, False),
            ("previous_weight", D64),              # promoted RW the cap compared against
            ("relative_weight", D64, False),       # the weight: after low volume, tilt + rescaling, cap
            ("base_points", D64, False),           # 基准点数 = relative_weight × 100
            ("standard_cost", MONEY, False),       # relative_weight × all_case_mean_cost
            ("all_case_mean_cost", MONEY, False),  # the region's year-weighted mean of all kept cases
            ("low_volume", B, False),
            ("tilted", B, False),
            ("capped", B, False),
            ("calibrated_at", T, False),
        ),
        partition_by=("calibration_run_id",),
    )
)

HOSPITAL_INDICATORS = register(
    TableDef(
        name="hospital_indicators",
        description="CMI, cost- and time-consumption index per hospital and data year under a calibration "
        "run's weights",
        schema=_schema(
            ("calibration_run_id", S, False),
            ("region", S, False),
            ("target_year", I, False),
            ("data_year", I, False),
            ("hospital_id", S, False),
            ("cases", L, False),
            ("total_weight", D64, False),          # Σ RW over the cases
            ("cmi", D64, False),
            ("cost_index", D64, False),            # 费用消耗指数
            ("time_index", D64, False),            # 时间消耗指数
            ("calibrated_at", T, False),
        ),
        partition_by=("calibration_run_id",),
    )
)

CALIBRATION_QUALITY = register(
    TableDef(
        name="calibration_quality",
        description="quality of every calibration run per region: 入组率, trimming, RIV, CV, low-volume "
        "groups, error against synthetic true costs",
        schema=_schema(
            ("calibration_run_id", S, False),
            ("region", S, False),
            ("target_year", I, False),
            ("cases_all", L, False),
            ("cases_excluded", L, False),
            ("cases_grouped", L, False),
            ("grouping_rate", D64),                # 入组率 = grouped / (all − excluded)
            ("cases_after_trimming", L, False),
            ("trimmed_share", D64),
            ("groups", I, False),
            ("groups_with_cases", I, False),
            ("low_volume_groups", I, False),
            ("cv_ge_1_share", D64),
            ("riv", D64),
            ("all_case_mean_cost", MONEY),
            ("tilted_groups", I, False),
            ("capped_groups", I, False),
            ("budget_ratio", D64),                 # Σ RW·n after cap / before tilt and cap
            ("true_cost_groups", I),
            ("true_cost_median_abs_error", D64),
            ("true_cost_weighted_abs_error", D64),
            ("calibrated_at", T, False),
        ),
        partition_by=("calibration_run_id",),
    )
)

PROMOTED_WEIGHTS = register(
    TableDef(
        name="promoted_weights",
        description="which calibration run's weights are promoted per region and target year (latest "
        "promotion wins; earlier ones in the table history)",
        schema=_schema(
            ("region", S, False),
            ("target_year", I, False),
            ("calibration_run_id", S, False),
            ("promoted_at", T, False),
            ("promoted_by", S, False),
            ("note", S),
        ),
        merge_keys=("region", "target_year"),
        version_column="promoted_at",
    )
)


# -- DRG payment (casemix.payment) ------------------------------------------------------------------
POINTS = DecimalType(20, 4)        # 点数: 4 decimals (policy payment.points_decimals <= 4 keeps them exact)
POINT_VALUE = DecimalType(24, 10)  # 点值: yuan per point, a ratio, kept with 10 decimals
RATIO = DecimalType(18, 6)

HOSPITALS = register(
    TableDef(
        name="hospitals",
        description="register of designated hospitals (定点医疗机构): region, grade and type, which scoring "
        "reads for hospital coefficients",
        schema=_schema(
            ("hospital_id", S, False),
            ("region", S, False),
            ("name", S),
            ("grade", S, False),                 # 三级 / 二级 / 一级
            ("hospital_type", S, False),         # general / tcm / specialty
            ("source_file", S, False),
            ("loaded_at", T, False),
        ),
        merge_keys=("hospital_id",),
        audit_columns=("source_file", "loaded_at"),
    )
)

AUDIT_DEDUCTIONS = register(
    TableDef(
        name="audit_deductions",
        description="audit deductions (审核扣款) per hospital and month, subtracted from the settlement "
        "(may be empty)",
        schema=_schema(
            ("deduction_id", S, False),
            ("region", S, False),
            ("hospital_id", S, False),
            ("month", S, False),                 # YYYY-MM the deduction is settled in
            ("amount", MONEY, False),
            ("reason", S),
        ),
        merge_keys=("deduction_id",),
    )
)

CASE_POINTS = register(
    TableDef(
        name="case_points",
        description="points of every inpatient case under the DRG point method: group, base points, "
        "hospital coefficient, case type, ratio to the group mean, readmission, final points",
        schema=_schema(
            ("claim_id", S, False),
            ("region", S, False),
            ("discharge_month", S, False),
            ("hospital_id", S, False),
            ("grade", S),                        # from `hospitals`; null: hospital not in the register
            ("person_id", S, False),
            ("insurance_scheme", S, False),
            ("admission_date", D, False),
            ("discharge_date", D, False),
            ("los_days", I, False),
            ("discharge_status", S, False),
            ("scheme_id", S, False),
            ("drg", S),
            ("adrg", S),
            ("group_status", S, False),
            ("calibration_run_id", S),           # the promoted weights run used
            ("relative_weight", D64),
            ("base_points", POINTS),             # B_g = RW × 100
            ("group_mean_cost", MONEY),          # the group's standard cost = RW × all-case mean
            ("all_case_mean_cost", MONEY),
            ("total_cost", MONEY, False),
            ("fund_paid", MONEY, False),         # what fee-for-service paid from the fund
            ("patient_paid", MONEY, False),      # total − fund (自付 + 自费)
            ("out_of_pocket", MONEY, False),     # 自费
            ("cost_ratio", RATIO),               # total cost / group mean cost
            ("hospital_coefficient", RATIO),
            ("coefficient_source", S),           # grade / history / same_price / grade_default
            ("case_type", S, False),
            ("readmission_halved", B, False),
            ("readmission_claim_id", S),         # the later stay that caused it
            ("points_before_readmission", POINTS, False),
            ("points", POINTS, False),
            ("score_run_id", S, False),
            ("scored_at", T, False),
        ),
        partition_by=("region", "discharge_month"),
        merge_keys=("claim_id",),
        change_feed=True,
    )
)

HOSPITAL_SETTLEMENTS = register(
    TableDef(
        name="hospital_settlements",
        description="what each hospital is paid per month (provisional) and year (final): points, point "
        "value, gross amount, patient payments, deductions, withheld and released, surplus/overrun share",
        schema=_schema(
            ("settlement_year", I, False),
            ("region", S, False),
            ("period", S, False),                # YYYY-MM (month) or YYYY (year)
            ("period_type", S, False),           # month | year
            ("hospital_id", S, False),
            ("method", S, False),                # point | rate
            ("cases", L, False),
            ("points", POINTS, False),           # rate method: Σ RW × 100
            ("point_value", POINT_VALUE),        # rate method: null
            ("gross_amount", MONEY, False),      # points × PV (rate: Σ standards paid + patient payments)
            ("patient_payments", MONEY, False),
            ("audit_deductions", MONEY, False),
            ("fund_due", MONEY, False),          # gross − patient payments − deductions
            ("provisional_paid", MONEY, False),  # month: share paid; year: Σ months
            ("withheld", MONEY, False),          # month: due − paid; year: Σ months
            ("released", MONEY, False),          # year: final − Σ provisional paid (month rows: 0)
            ("final_fund_payment", MONEY, False),
            ("surplus_share", MONEY, False),     # the hospital's share of the region's surplus (-: overrun)
            ("ffs_fund", MONEY, False),          # fee-for-service fund amount of the same cases
            ("settle_run_id", S, False),
            ("settled_at", T, False),
        ),
        partition_by=("settlement_year", "region"),
        change_feed=True,
    )
)

POINT_VALUE_TABLE = register(
    TableDef(
        name="point_values",
        description="per region, year and month: budget, patients' payments, total points, point value, "
        "surplus/overrun and its sharing (rate method: base rate)",
        schema=_schema(
            ("settlement_year", I, False),
            ("region", S, False),
            ("period", S, False),
            ("period_type", S, False),
            ("method", S, False),
            ("cases", L, False),
            ("budget", MONEY, False),            # month: the budget's monthly share
            ("patient_payments", MONEY, False),
            ("ffs_fund", MONEY, False),          # A: fee-for-service fund amounts
            ("surplus", MONEY, False),           # S = budget − A (year; negative: overrun)
            ("fund_retained", MONEY, False),     # the fund's part of S (kept surplus / borne overrun)
            ("hospital_share", MONEY, False),    # hospitals' part of S
            ("settlement_total", MONEY, False),  # budget + patient payments − fund_retained
            ("total_points", POINTS, False),
            ("point_value", POINT_VALUE),
            ("base_rate", POINT_VALUE),          # rate method F
            ("settle_run_id", S, False),
            ("settled_at", T, False),
        ),
        partition_by=("settlement_year", "region"),
        change_feed=True,
    )
)

PAYMENT_SIMULATION = register(
    TableDef(
        name="payment_simulation",
        description="模拟运行: per hospital and month, the fund payment under fee-for-service, the DRG point "
        "method and the rate method, and the differences (latest simulation of each region and year)",
        schema=_schema(
            ("settlement_year", I, False),
            ("region", S, False),
            ("month", S, False),
            ("hospital_id", S, False),
            ("grade", S),
            ("cases", L, False),
            ("points", POINTS, False),
            ("ffs_fund", MONEY, False),
            ("point_fund", MONEY, False),
            ("rate_fund", MONEY, False),
            ("point_minus_ffs", MONEY, False),
            ("rate_minus_ffs", MONEY, False),
            ("simulated_through", S, False),     # YYYY-MM: the period's last month (December: the whole year)
            ("settle_run_id", S, False),
            ("settled_at", T, False),
        ),
        partition_by=("settlement_year", "region"),
    )
)
