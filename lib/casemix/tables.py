"""The table catalogue: every Delta table the project writes, defined once.

Each :class:`TableDef` gives the table's name, Spark schema, partition columns, merge keys, the
column that orders versions of the same key (latest wins), whether downstream systems follow it
through the change data feed, and a one-line description. Every reader and writer goes through
:data:`CATALOGUE` (see :mod:`casemix.storage`); the README's table list is generated from it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

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
    properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = self.schema.fieldNames()
        for col in (*self.partition_by, *self.merge_keys, *([self.version_column] if self.version_column else [])):
            if col not in names:
                raise ValueError(f"table {self.name}: column {col!r} is not in its schema")

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
    def table_properties(self) -> dict[str, str]:
        props = dict(self.properties)
        if self.change_feed:
            props["delta.enableChangeDataFeed"] = "true"
        return props


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
