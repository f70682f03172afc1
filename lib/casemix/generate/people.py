"""Insured people: every attribute is a hash of the person's identity, so a person is the same in every claim.

A person is ``(region index, person index p)`` with ``0 <= p < insured_persons`` of the region
(``conf/province.yaml``); their 64-bit key is ``region << 40 | p``. Sex, birth date (from the age pyramid
``age_bands``, everyone at least one year old at the start of the first generated year), insurance
scheme (职工 employee for a share of adults, else 居民 resident), family-doctor signing and contracted
institution, the county of their 身份证号 and its sequence number all come from :mod:`casemix.generate.rng`
draws on that key. Newborns (MDCP stays) are people ``p = insured_persons + case id`` whose birth date
is their admission date minus their age in days.

身份证号 (national id) is built like a real one (6-digit area code: the region's first four digits and a
county, 8-digit birth date, 3-digit sequence whose parity is the sex, ISO 7064 MOD 11-2 check
character) but is fake. 人员编号 (person id) is the region code followed by the 12-digit person index.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from casemix.generate.dates import ymd
from casemix.generate.rng import Draws

__all__ = ["person_core", "person_details", "national_ids", "person_ids", "person_keys"]

_M20 = np.uint64((1 << 20) - 1)
_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_CHECK = pa.array(list("10X98765432"), type=pa.string())


def person_keys(region: np.ndarray, p: np.ndarray) -> np.ndarray:
    return (np.asarray(region).astype(np.uint64) << np.uint64(40)) | np.asarray(p).astype(np.uint64)


def _field(h: np.ndarray, shift: int) -> np.ndarray:
    """20 bits of ``h`` from ``shift`` as a uniform in (0, 1)."""
    return (((h >> np.uint64(shift)) & _M20).astype(np.float64) + 0.5) / float(1 << 20)


def person_core(plan, region: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sex 1/2, birth day number, age band index) of people; arrays of any (equal) shape.

    One hash per person: bit 0 the sex, then three 20-bit fields for age band, year of age and day.
    """
    shape = np.shape(p)
    h = Draws(plan.spec.seed, person_keys(region, p).ravel()).bits("person.core").reshape(shape)
    sex = (1 + (h & np.uint64(1))).astype(np.int8)
    band = np.minimum(np.searchsorted(plan.age_band_cdf, _field(h, 1), side="right"), len(plan.age_band_cdf) - 1)
    age0 = plan.age_band_min[band] + np.floor(_field(h, 21) * plan.age_band_span[band]).astype(np.int64)
    doy = np.floor(_field(h, 41) * 365).astype(np.int64)
    birth = plan.person_ref_day - np.ceil(age0 * 365.25).astype(np.int64) - 1 - doy
    return sex, birth, band


def person_details(plan, region: np.ndarray, p: np.ndarray, birth: np.ndarray, newborn: np.ndarray) -> dict:
    """Insurance scheme (0 employee, 1 resident), county (1-12), id sequence, family-doctor signing."""
    d = Draws(plan.spec.seed, person_keys(region, p))
    h = d.bits("person.details")
    adult_at_ref = (plan.person_ref_day - birth) >= 18 * 365.25
    employee = adult_at_ref & ~newborn & (_field(h, 0) < plan.region_employee_share[region])
    county = 1 + np.floor(_field(h, 20) * 12).astype(np.int64)
    seq = np.floor(_field(h, 40) * 500).astype(np.int64) * 2
    signed = _field(d.bits("person.signed"), 0) < plan.region_signed_share[region]
    contracted = plan.contracted_start[region] + np.floor(
        _field(d.bits("person.signed"), 20) * plan.contracted_count[region]).astype(np.int64)
    return {"scheme": np.where(employee, 0, 1).astype(np.int8), "county": county, "seq": seq,
            "signed": signed, "contracted": contracted}


def national_ids(plan, region: np.ndarray, county: np.ndarray, birth: np.ndarray, seq: np.ndarray,
                 sex: np.ndarray) -> pa.Array:
    """18-character 身份证号 strings (valid-looking, fake)."""
    area_prefix = np.array([int(c[:4]) for c in plan.region_codes], dtype=np.int64)[region]
    y, m, d = ymd(birth)
    seq3 = seq + (sex == 1)  # odd: male, even: female
    body = (area_prefix * 100 + county) * 10**11 + (y * 10000 + m * 100 + d) * 1000 + seq3
    digits = np.empty((len(body), 17), dtype=np.int64)
    rest = body.copy()
    for i in range(16, -1, -1):
        digits[:, i] = rest % 10
        rest //= 10
    check = (digits @ _ID_WEIGHTS) % 11
    return pc.binary_join_element_wise(pa.array(body).cast(pa.string()), _CHECK.take(pa.array(check)), "")


def person_ids(plan, region: np.ndarray, p: np.ndarray) -> pa.Array:
    """人员编号: region code + 12-digit person index."""
    codes = pa.array(plan.region_codes, type=pa.string()).take(pa.array(region))
    return pc.binary_join_element_wise(codes, pc.utf8_lpad(pa.array(p).cast(pa.string()), 12, "0"), "")
