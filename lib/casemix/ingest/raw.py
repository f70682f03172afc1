"""The raw drop format: what hospitals send, as the generator writes it and ingestion reads it.

A drop is one folder per pooling region and discharge month::

    <drops root>/inpatient/region=<region code>/month=<YYYY-MM>/<files>.csv | .parquet

Files are CSV (UTF-8, header row with the Chinese column names below, comma separated, RFC-4180
quoting) or Parquet with the same column names, every column a string, as hospital systems export
them: dates as text (``2023-01-05``, ``20230105`` or ``2023/01/05``), codes possibly in lower case,
with full-width characters or spaces, lists of codes separated by ``|`` (principal procedure first).
"""
from __future__ import annotations

#: Chinese column name in the drop -> field name in casemix (order = column order of a drop)
RAW_COLUMNS: dict[str, str] = {
    "结算清单号": "claim_id",
    "版本号": "claim_version",
    "统筹区": "region",
    "医疗机构编码": "hospital_id",
    "人员编号": "person_id",
    "身份证号": "national_id",
    "险种": "insurance_scheme",
    "性别": "sex",
    "出生日期": "birth_date",
    "年龄": "age_years",
    "年龄天数": "age_days",
    "新生儿出生体重": "birth_weight_g",
    "入院日期": "admission_date",
    "出院日期": "discharge_date",
    "住院天数": "los_days",
    "离院方式": "discharge_status",
    "科室": "dept",
    "主要诊断": "principal_dx",
    "其他诊断": "secondary_dxs",
    "手术操作": "procedures",
    "总费用": "total_cost",
    "基金支付": "fund_paid",
    "个人自付": "self_pay",
    "个人自费": "out_of_pocket",
    "药品费": "drug_cost",
    "耗材费": "consumable_cost",
    "检查费": "exam_cost",
}
FIELD_TO_RAW = {v: k for k, v in RAW_COLUMNS.items()}
RAW_FIELDS = list(RAW_COLUMNS.values())

#: values of 险种 (insurance scheme) and what they mean
INSURANCE_SCHEMES = {"职工": "employee", "居民": "resident"}
#: values of 性别 (sex) accepted, and the code stored
SEX_VALUES = {"1": "1", "2": "2", "男": "1", "女": "2", "M": "1", "F": "2"}
#: 离院方式 (discharge status): 1 routine, 2 transfer (医嘱转院), 3 transfer to community, 4 left
#: against advice, 5 death, 9 other
DISCHARGE_STATUSES = ("1", "2", "3", "4", "5", "9")
LIST_SEPARATOR = "|"
DATE_FORMATS = ("yyyy-MM-dd", "yyyyMMdd", "yyyy/MM/dd")

MONEY_FIELDS = ("total_cost", "fund_paid", "self_pay", "out_of_pocket", "drug_cost", "consumable_cost", "exam_cost")
DATE_FIELDS = ("birth_date", "admission_date", "discharge_date")
INT_FIELDS = ("claim_version", "age_years", "age_days", "birth_weight_g", "los_days")
REQUIRED_FIELDS = (
    "claim_id", "claim_version", "region", "hospital_id", "person_id", "insurance_scheme", "sex", "age_years",
    "admission_date", "discharge_date", "discharge_status", "total_cost", "fund_paid", "self_pay", "out_of_pocket",
)

# -- reason codes of claims_rejected (every code that applies is recorded) --------------------------
MALFORMED_ROW = "MALFORMED_ROW"                       # CSV line that does not parse into the columns
MISSING_FIELD = "MISSING_FIELD"                       # a required field is empty (besides the principal dx)
MISSING_PRINCIPAL_DX = "MISSING_PRINCIPAL_DX"
UNKNOWN_DX_CODE = "UNKNOWN_DX_CODE"                   # a diagnosis not in the dictionary, even after the code map
UNKNOWN_PROC_CODE = "UNKNOWN_PROC_CODE"
INVALID_TYPE = "INVALID_TYPE"                         # a date or integer field that does not parse
NON_NUMERIC_COST = "NON_NUMERIC_COST"                 # a money field that is not a number
NEGATIVE_COST = "NEGATIVE_COST"
FUND_EXCEEDS_TOTAL = "FUND_EXCEEDS_TOTAL"             # 基金支付 > 总费用
DISCHARGE_BEFORE_ADMISSION = "DISCHARGE_BEFORE_ADMISSION"
INVALID_SEX = "INVALID_SEX"
INVALID_CATEGORY = "INVALID_CATEGORY"                 # 险种 or 离院方式 outside its code list
SEX_DX_MISMATCH = "SEX_DX_MISMATCH"                   # sex-specific diagnosis for the other sex
NEWBORN_DX_ADULT = "NEWBORN_DX_ADULT"                 # perinatal (newborn) diagnosis for an adult
REGION_MISMATCH = "REGION_MISMATCH"                   # 统筹区 differs from the drop folder's region
DUPLICATE_CLAIM_ID = "DUPLICATE_CLAIM_ID"             # same claim id and version again within one drop

REASON_CODES = (
    MALFORMED_ROW, MISSING_FIELD, MISSING_PRINCIPAL_DX, UNKNOWN_DX_CODE, UNKNOWN_PROC_CODE, INVALID_TYPE,
    NON_NUMERIC_COST, NEGATIVE_COST, FUND_EXCEEDS_TOTAL, DISCHARGE_BEFORE_ADMISSION, INVALID_SEX, INVALID_CATEGORY,
    SEX_DX_MISMATCH, NEWBORN_DX_ADULT, REGION_MISMATCH, DUPLICATE_CLAIM_ID,
)

#: defect kinds the generator plants (side file ``<drops root>/inpatient/_defects``) -> what ingestion
#: must report: a reason code, or SUPERSEDED for a corrected resubmission's earlier version
SUPERSEDED = "SUPERSEDED"
DEFECT_KINDS: dict[str, str] = {
    "missing_principal_dx": MISSING_PRINCIPAL_DX,
    "unknown_dx_code": UNKNOWN_DX_CODE,
    "discharge_before_admission": DISCHARGE_BEFORE_ADMISSION,
    "negative_cost": NEGATIVE_COST,
    "non_numeric_cost": NON_NUMERIC_COST,
    "fund_exceeds_total": FUND_EXCEEDS_TOTAL,
    "sex_dx_mismatch": SEX_DX_MISMATCH,
    "newborn_dx_adult": NEWBORN_DX_ADULT,
    "duplicate_claim_id": DUPLICATE_CLAIM_ID,
    "resubmission": SUPERSEDED,
    "malformed_csv_row": MALFORMED_ROW,
    "wrong_type": INVALID_TYPE,
}
