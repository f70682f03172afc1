"""The resolved generation plan: spec + province + scheme catalogue turned into small numpy arrays.

:func:`build_plan` is the middle layer between the validated :class:`~casemix.generate.spec.GeneratorSpec`
(what to generate) and the Spark functions that generate it: it enumerates the hospitals, the drops
(region x discharge month) and how many case ids each drop gets, the age pyramid, the month calendar,
the department labels and the scheme-derived :class:`~casemix.generate.catalogue.CaseCatalogue`.
Everything in it is a deterministic function of (spec, province, scheme files); it is a few MB at most
and travels to the tasks in their closure. Per-case data never exists on the driver.

Case ids are laid out drop by drop (region-major, then month): ids ``[start[b], start[b+1])`` belong to
drop ``b``. Each Spark partition of ``spark.range`` is a contiguous id range, so it touches only a few
drops and writes few files, without a shuffle; the counts per drop follow population, seasonality and
yearly growth (with a small seeded jitter), computed exactly by largest remainder.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from casemix.generate.catalogue import CaseCatalogue, build_catalogue
from casemix.generate.dates import days_in_month, from_ymd
from casemix.generate.province import GRADES, HOSPITAL_TYPES, Province
from casemix.generate.rng import Draws, cdf_from_weights
from casemix.generate.spec import GeneratorSpec, SpecError

__all__ = ["GenerationPlan", "build_plan", "DEPT_LABEL_STYLES", "DATE_STYLES", "chinese_numeral"]

#: how hospitals label their departments in 科室 (some with a comma or quotes: CSV must quote them)
DEPT_LABEL_STYLES = ("{dept}", "{dept}{ward}病区", "{dept},{ward}病区", '{dept}"{ward}病区"')
DEPT_STYLE_WEIGHTS = (0.7, 0.15, 0.1, 0.05)
#: date formats of casemix.ingest.raw.DATE_FORMATS as used by hospital systems, and their frequency
DATE_STYLES = ("%Y-%m-%d", "%Y%m%d", "%Y/%m/%d")
DATE_STYLE_WEIGHTS = (0.6, 0.25, 0.15)
#: 性别 written as 1/2 or as 男/女
SEX_STYLE_WEIGHTS = (0.7, 0.3)
WARD_NUMERALS = ("一", "二", "三")
#: rows per partition when the spec leaves the number of partitions open
ROWS_PER_PARTITION = 250_000
VISITS_PER_PARTITION = 1_000_000

_DIGITS = "零一二三四五六七八九"


def chinese_numeral(n: int) -> str:
    """0..999 in Chinese numerals (三十二, 一百零五): how a clerk might type an age by mistake."""
    if n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _DIGITS[n // 10] + "十" + (_DIGITS[n % 10] if n % 10 else "")
    rest = n % 100
    head = _DIGITS[n // 100] + "百"
    if rest == 0:
        return head
    if rest < 10:
        return head + "零" + _DIGITS[rest]
    return head + (_DIGITS[rest // 10] + "十" + (_DIGITS[rest % 10] if rest % 10 else ""))


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    w = weights / weights.sum() * total
    base = np.floor(w).astype(np.int64)
    short = total - int(base.sum())
    if short:
        order = np.argsort(-(w - base), kind="stable")
        base[order[:short]] += 1
    return base


@dataclass(frozen=True, eq=False)
class GenerationPlan:
    """Everything the generating tasks need, as small arrays (see the module docstring)."""

    spec: GeneratorSpec
    province: Province
    catalogue: CaseCatalogue
    scheme_dir: str
    partitions: int
    visit_partitions: int
    # regions (in province order, restricted to spec.regions)
    region_codes: tuple[str, ...]
    region_names: tuple[str, ...]
    region_insured: np.ndarray        # int64
    region_price: np.ndarray          # float64
    region_employee_share: np.ndarray
    region_signed_share: np.ndarray
    region_csv: np.ndarray            # bool: drops sent as CSV
    region_grade_cdf: np.ndarray      # [R, 3] inpatient stays by grade
    region_visit_grade_cdf: np.ndarray
    # hospitals (contiguous per region and grade)
    hospital_ids: tuple[str, ...]
    hospital_region: np.ndarray
    hospital_grade: np.ndarray
    hospital_type: np.ndarray
    hospital_cost_multiplier: np.ndarray   # grade x type
    hospital_date_style: np.ndarray
    hospital_sex_style: np.ndarray
    hospital_dept_style: np.ndarray
    hospital_start: np.ndarray        # [R, 3]
    hospital_count: np.ndarray        # [R, 3]
    contracted_start: np.ndarray      # [R] family-doctor institutions (lowest grade present)
    contracted_count: np.ndarray
    grade_cost_multiplier: np.ndarray  # [3]
    grade_deductible: np.ndarray      # [3, 2] (employee, resident), yuan
    grade_reimbursement: np.ndarray   # [3, 2]
    grade_visit_reimbursement: np.ndarray
    grade_visit_mean_cost: np.ndarray
    grade_secondary_multiplier: np.ndarray
    # calendar
    months: tuple[str, ...]           # YYYY-MM of each month index
    month_first_day: np.ndarray       # int64 day numbers
    month_days: np.ndarray
    month_year: np.ndarray
    month_inflation: np.ndarray
    first_day: int
    last_day: int
    next_month_label: str             # the month after the last one (resubmissions of the last month)
    # drops: ids [start[b], start[b+1]) -> region b // M, month b % M
    case_block_start: np.ndarray
    visit_block_start: np.ndarray
    csv_case_share: float             # share of case ids in CSV regions
    # people
    person_ref_day: int
    age_band_cdf: np.ndarray
    age_band_min: np.ndarray
    age_band_span: np.ndarray
    age_band_inpatient_accept: np.ndarray   # admission rate / max rate
    age_band_outpatient_accept: np.ndarray
    # departments: label index = (dept * n_styles + style) * n_wards + ward
    dept_labels: tuple[str, ...]
    dept_of_mdc: np.ndarray           # [len(mdc_codes), 2] dept index (medical, surgical)
    chinese_numerals: tuple[str, ...]

    @property
    def n_regions(self) -> int:
        return len(self.region_codes)

    @property
    def n_months(self) -> int:
        return len(self.months)

    def drop_id(self, region: str, month: str) -> str:
        return f"{region}/{month}"

    def case_region(self, ids: np.ndarray) -> np.ndarray:
        """Region index of case ids (from the id layout alone; a readmission stays in its region)."""
        block = np.searchsorted(self.case_block_start, np.asarray(ids, dtype=np.int64), side="right") - 1
        return block // self.n_months


def _resolve_scheme_dir(scheme_dir: str | os.PathLike, scheme_id: str) -> str:
    path = Path(scheme_dir)
    if (path / "mdc.json").is_file():
        return str(path.resolve())
    if (path / scheme_id / "mdc.json").is_file():
        return str((path / scheme_id).resolve())
    raise SpecError(f"grouping scheme {scheme_id!r} not found: neither {path} nor {path / scheme_id} holds mdc.json; "
                    "pass the scheme folder or the folder of schemes (settings.schemes_path)")


def build_plan(spec: GeneratorSpec, province: Province, scheme_dir: str | os.PathLike) -> GenerationPlan:
    """Resolve ``spec`` against ``province`` and the scheme (``scheme_dir`` is the scheme folder itself
    or the folder holding one sub-folder per scheme id)."""
    folder = _resolve_scheme_dir(scheme_dir, spec.scheme_id)
    cat = build_catalogue(folder, province, spec.seed)
    if spec.regions is None:
        regions = list(province.regions)
    else:
        known = {r.code for r in province.regions}
        unknown = [c for c in spec.regions if c not in known]
        if unknown:
            raise SpecError(f"regions {unknown} are not in {province.source_file or 'the province'}; "
                            f"known: {', '.join(sorted(known))}")
        regions = [r for r in province.regions if r.code in set(spec.regions)]
    missing = [y for y in spec.years if y not in province.inflation]
    if missing:
        raise SpecError(f"years {missing} have no inflation index in {province.source_file or 'the province'}; "
                        "add them under 'inflation' or generate other years")
    R = len(regions)

    # hospitals, grade shares
    ids, h_region, h_grade, h_type, h_mult = [], [], [], [], []
    start = np.zeros((R, len(GRADES)), dtype=np.int64)
    count = np.zeros((R, len(GRADES)), dtype=np.int64)
    for ri, r in enumerate(regions):
        seq = 0
        for gi, g in enumerate(GRADES):
            start[ri, gi] = len(ids)
            counts = r.hospitals.get(g)
            for ti, t in enumerate(HOSPITAL_TYPES):
                for _ in range(getattr(counts, t) if counts else 0):
                    seq += 1
                    ids.append(f"H{r.code}{seq:05d}")
                    h_region.append(ri)
                    h_grade.append(gi)
                    h_type.append(ti)
                    h_mult.append(province.grades[g].cost_multiplier * province.hospital_types[t].cost_multiplier)
            count[ri, gi] = len(ids) - start[ri, gi]
    H = len(ids)
    hd = Draws(spec.seed, np.arange(H, dtype=np.uint64))
    inpatient_share = np.array([province.grades[g].inpatient_share for g in GRADES])
    outpatient_share = np.array([province.grades[g].outpatient_share for g in GRADES])
    grade_cdf = np.vstack([cdf_from_weights(inpatient_share * (count[ri] > 0)) for ri in range(R)])
    visit_grade_cdf = np.vstack([cdf_from_weights(outpatient_share * (count[ri] > 0)) for ri in range(R)])
    lowest = np.array([max(gi for gi in range(len(GRADES)) if count[ri, gi] > 0) for ri in range(R)])

    def gp(attr, scheme=None):
        vals = [getattr(province.grades[g], attr) for g in GRADES]
        if scheme is None:
            return np.array(vals, dtype=np.float64)
        return np.array([[v["employee"], v["resident"]] for v in vals], dtype=np.float64)

    # calendar
    months, first, ndays, year = [], [], [], []
    for y in spec.years:
        for m in range(1, 13):
            months.append(f"{y:04d}-{m:02d}")
            first.append(int(from_ymd(y, m, 1)))
            ndays.append(days_in_month(y, m))
            year.append(y)
    M = len(months)
    next_label = f"{spec.years[-1] + 1:04d}-01"

    # drops and their case / visit counts
    def blocks(total: int, salt: str) -> np.ndarray:
        w = np.zeros(R * M)
        jitter = Draws(spec.seed, np.arange(R * M, dtype=np.uint64)).normal(salt)
        for ri, r in enumerate(regions):
            for mi in range(M):
                yi = mi // 12
                w[ri * M + mi] = (r.population_10k * province.seasonality[mi % 12]
                                  * province.yearly_volume_growth ** yi * math.exp(0.05 * jitter[ri * M + mi]))
        counts = _largest_remainder(total, w)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    # people
    bands = province.age_bands
    in_rate = np.array([b.inpatient_rate for b in bands])
    out_rate = np.array([b.outpatient_rate for b in bands])

    # departments
    dept_names: list[str] = []
    for pair in province.departments.values():
        for name in pair:
            if name not in dept_names:
                dept_names.append(name)
    labels = tuple(style.format(dept=d, ward=w) for d in dept_names for style in DEPT_LABEL_STYLES
                   for w in WARD_NUMERALS)
    dept_of_mdc = np.array([
        [dept_names.index(n) for n in province.departments.get(m, province.departments["other"])]
        for m in cat.mdc_codes
    ], dtype=np.int32)

    n_visits = spec.n_visits
    case_blocks = blocks(spec.n_cases, "blocks.cases")
    partitions = spec.partitions or max(2, math.ceil(spec.n_cases / ROWS_PER_PARTITION))
    visit_partitions = max(partitions, math.ceil(n_visits / VISITS_PER_PARTITION)) if n_visits else partitions

    return GenerationPlan(
        spec=spec,
        province=province,
        catalogue=cat,
        scheme_dir=folder,
        partitions=int(partitions),
        visit_partitions=int(visit_partitions),
        region_codes=tuple(r.code for r in regions),
        region_names=tuple(r.name for r in regions),
        region_insured=np.array([r.insured_persons for r in regions], dtype=np.int64),
        region_price=np.array([r.price_level for r in regions]),
        region_employee_share=np.array([r.employee_share for r in regions]),
        region_signed_share=np.array([r.family_doctor_signed_share for r in regions]),
        region_csv=np.array([r.drop_format == "csv" for r in regions]),
        region_grade_cdf=grade_cdf,
        region_visit_grade_cdf=visit_grade_cdf,
        hospital_ids=tuple(ids),
        hospital_region=np.array(h_region, dtype=np.int32),
        hospital_grade=np.array(h_grade, dtype=np.int8),
        hospital_type=np.array(h_type, dtype=np.int8),
        hospital_cost_multiplier=np.array(h_mult),
        hospital_date_style=hd.choice("hospital.date_style", cdf_from_weights(DATE_STYLE_WEIGHTS)).astype(np.int8),
        hospital_sex_style=hd.choice("hospital.sex_style", cdf_from_weights(SEX_STYLE_WEIGHTS)).astype(np.int8),
        hospital_dept_style=hd.choice("hospital.dept_style", cdf_from_weights(DEPT_STYLE_WEIGHTS)).astype(np.int8),
        hospital_start=start,
        hospital_count=count,
        contracted_start=np.array([start[ri, lowest[ri]] for ri in range(R)], dtype=np.int64),
        contracted_count=np.array([count[ri, lowest[ri]] for ri in range(R)], dtype=np.int64),
        grade_cost_multiplier=gp("cost_multiplier"),
        grade_deductible=gp("deductible", True),
        grade_reimbursement=gp("reimbursement", True),
        grade_visit_reimbursement=gp("outpatient_reimbursement", True),
        grade_visit_mean_cost=gp("outpatient_mean_cost"),
        grade_secondary_multiplier=gp("secondary_dx_multiplier"),
        months=tuple(months),
        month_first_day=np.array(first, dtype=np.int64),
        month_days=np.array(ndays, dtype=np.int64),
        month_year=np.array(year, dtype=np.int64),
        month_inflation=np.array([province.inflation_index(y) for y in year]),
        first_day=first[0],
        last_day=first[-1] + ndays[-1] - 1,
        next_month_label=next_label,
        case_block_start=case_blocks,
        csv_case_share=float(np.diff(case_blocks).reshape(R, M)[[r.drop_format == "csv" for r in regions]].sum()
                             / max(spec.n_cases, 1)),
        visit_block_start=blocks(n_visits, "blocks.visits"),
        person_ref_day=first[0] - 200,
        age_band_cdf=cdf_from_weights([b.population_share for b in bands]),
        age_band_min=np.array([b.min_age for b in bands], dtype=np.int64),
        age_band_span=np.array([b.max_age - b.min_age + 1 for b in bands], dtype=np.int64),
        age_band_inpatient_accept=in_rate / in_rate.max(),
        age_band_outpatient_accept=out_rate / out_rate.max() if out_rate.max() > 0 else np.ones(len(bands)),
        dept_labels=labels,
        dept_of_mdc=dept_of_mdc,
        chinese_numerals=tuple(chinese_numeral(i) for i in range(200)),
    )
