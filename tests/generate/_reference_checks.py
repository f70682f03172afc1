"""An independent reading of casemix.ingest.raw's reason codes, to check what the drops really contain.

``reasons(record, codebook, folder_region, seen)`` returns every reason code of a raw drop record, as
the comments of raw.py define them (dates in any of DATE_FORMATS, codes after normalise_code and the
code map, sex as 1/2/男/女/M/F).
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from casemix.codes import normalise_code
from casemix.ingest import raw

_DATE = [re.compile(r"^(\d{4})-(\d{2})-(\d{2})$"), re.compile(r"^(\d{4})(\d{2})(\d{2})$"),
         re.compile(r"^(\d{4})/(\d{2})/(\d{2})$")]
_MONEY = re.compile(r"^-?\d+(\.\d+)?$")


def parse_date(text):
    for pattern in _DATE:
        m = pattern.match(text.strip())
        if m:
            try:
                return date(int(m[1]), int(m[2]), int(m[3]))
            except ValueError:
                return None
    return None


def parse_money(text):
    text = text.strip()
    if not _MONEY.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover
        return None


def codes(text):
    if text is None:
        return []
    return [c for c in (normalise_code(x) for x in text.split(raw.LIST_SEPARATOR)) if c]


def _blank(v) -> bool:
    return v is None or str(v).strip() == ""


def reasons(rec: dict, codebook, folder_region: str, seen: set) -> list[str]:
    if rec.get("malformed"):
        return [raw.MALFORMED_ROW]
    f = {field: rec.get(name) for name, field in raw.RAW_COLUMNS.items()}
    out = []
    if any(_blank(f[k]) for k in raw.REQUIRED_FIELDS):
        out.append(raw.MISSING_FIELD)
    pdx = None if _blank(f["principal_dx"]) else normalise_code(f["principal_dx"])
    if pdx is None:
        out.append(raw.MISSING_PRINCIPAL_DX)
    dxs = ([pdx] if pdx else []) + codes(f["secondary_dxs"])
    if any(codebook.map_diagnosis(c) is None for c in dxs):
        out.append(raw.UNKNOWN_DX_CODE)
    if any(codebook.map_procedure(c) is None for c in codes(f["procedures"])):
        out.append(raw.UNKNOWN_PROC_CODE)
    bad_type = any(not _blank(f[k]) and parse_date(f[k]) is None for k in raw.DATE_FIELDS)
    bad_type |= any(not _blank(f[k]) and not str(f[k]).strip().isdigit() for k in raw.INT_FIELDS)
    if bad_type:
        out.append(raw.INVALID_TYPE)
    money = {k: (None if _blank(f[k]) else parse_money(f[k])) for k in raw.MONEY_FIELDS}
    if any(not _blank(f[k]) and money[k] is None for k in raw.MONEY_FIELDS):
        out.append(raw.NON_NUMERIC_COST)
    if any(v is not None and v < 0 for v in money.values()):
        out.append(raw.NEGATIVE_COST)
    if money["fund_paid"] is not None and money["total_cost"] is not None and money["fund_paid"] > money["total_cost"]:
        out.append(raw.FUND_EXCEEDS_TOTAL)
    adm = parse_date(f["admission_date"]) if not _blank(f["admission_date"]) else None
    dis = parse_date(f["discharge_date"]) if not _blank(f["discharge_date"]) else None
    if adm and dis and dis < adm:
        out.append(raw.DISCHARGE_BEFORE_ADMISSION)
    sex = raw.SEX_VALUES.get(str(f["sex"]).strip()) if not _blank(f["sex"]) else None
    if not _blank(f["sex"]) and sex is None:
        out.append(raw.INVALID_SEX)
    if (not _blank(f["insurance_scheme"]) and f["insurance_scheme"] not in raw.INSURANCE_SCHEMES) or (
            not _blank(f["discharge_status"]) and f["discharge_status"] not in raw.DISCHARGE_STATUSES):
        out.append(raw.INVALID_CATEGORY)
    known = [codebook.map_diagnosis(c) for c in dxs]
    known = [c for c in known if c]
    if (sex == "1" and any(c in codebook.female_only for c in known)) or (
            sex == "2" and any(c in codebook.male_only for c in known)):
        out.append(raw.SEX_DX_MISMATCH)
    age = str(f["age_years"]).strip() if not _blank(f["age_years"]) else ""
    if age.isdigit() and int(age) >= codebook.adult_age and any(c in codebook.newborn_only for c in known):
        out.append(raw.NEWBORN_DX_ADULT)
    if f["region"] != folder_region:
        out.append(raw.REGION_MISMATCH)
    key = (f["claim_id"], f["claim_version"])
    if key in seen:
        out.append(raw.DUPLICATE_CLAIM_ID)
    seen.add(key)
    return out
