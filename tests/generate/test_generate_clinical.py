"""Generated stays are clinically coherent and group with the real CHS-DRG 1.1 tables."""
from __future__ import annotations

import pandas as pd

from casemix.codes import normalise_code
from casemix.grouping import group_frame, load_compiled
from casemix.ingest.raw import SEX_VALUES


def _codes(text):
    if text is None:
        return []
    return [c for c in (normalise_code(x) for x in text.split("|")) if c]


def _clinical(clean: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "sex": clean["性别"].map(lambda s: SEX_VALUES[s.strip()]),
        "age_years": clean["年龄"].astype(int),
        "age_days": pd.to_numeric(clean["年龄天数"]),
        "birth_weight_g": pd.to_numeric(clean["新生儿出生体重"]),
        "principal_dx": clean["主要诊断"].map(normalise_code),
        "secondary_dxs": clean["其他诊断"].map(_codes),
        "procedures": clean["手术操作"].map(_codes),
    })


def test_every_code_of_a_clean_record_is_in_the_code_book_after_normalisation(clean_records, codebook):
    rec = _clinical(clean_records)
    dx = set(rec["principal_dx"]) | {c for lst in rec["secondary_dxs"] for c in lst}
    px = {c for lst in rec["procedures"] for c in lst}
    assert len(dx) > 1000 and len(px) > 100
    assert sorted(c for c in dx if codebook.map_diagnosis(c) is None) == []
    assert sorted(c for c in px if codebook.map_procedure(c) is None) == []


def test_no_clean_record_trips_the_sex_or_newborn_plausibility_sets(clean_records, codebook):
    rec = _clinical(clean_records)
    for sex, age, pdx, secs in zip(rec["sex"], rec["age_years"], rec["principal_dx"], rec["secondary_dxs"]):
        codes = [pdx, *secs]
        wrong_sex = codebook.female_only if sex == "1" else codebook.male_only
        assert not any(c in wrong_sex for c in codes), (sex, codes)
        if age >= codebook.adult_age:
            assert not any(c in codebook.newborn_only for c in codes), (age, codes)


def test_clean_records_group_with_chs_drg_1_1_and_a_few_are_ungroupable_on_purpose(clean_records, schemes_dir):
    result = group_frame(load_compiled(schemes_dir / "chs-drg-1.1"), _clinical(clean_records), trace=False)
    share = result["status"].value_counts(normalize=True)
    assert share["grouped"] >= 0.95
    assert 0 < share.get("ungroupable", 0) < 0.02
    assert "invalid" not in share
    assert result["adrg"].nunique() > 250  # the whole scheme is exercised, not a handful of groups


def test_the_case_mix_is_sex_age_and_grade_coherent(rows):
    clean = rows[rows["defect_kind"].isna() & (rows["row_role"] == "original")]
    sex = clean["性别"].map(lambda s: SEX_VALUES[s])
    assert set(sex[clean["case_mdc"] == "MDCM"]) == {"1"}
    assert set(sex[clean["case_mdc"].isin(["MDCN", "MDCO"])]) == {"2"}
    newborn = clean[clean["case_mdc"] == "MDCP"]
    assert len(newborn) > 20 and set(newborn["年龄"]) == {"0"} and newborn["年龄天数"].notna().all()
    neonatal = newborn[newborn["年龄天数"].astype(int) <= 28]
    assert neonatal["新生儿出生体重"].notna().all()
    ps1 = newborn[newborn["case_adrg"] == "PS1"]
    assert (ps1["新生儿出生体重"].astype(int) < 1500).all()
    pregnant_age = clean.loc[clean["case_mdc"] == "MDCO", "年龄"].astype(int)
    assert pregnant_age.between(15, 46).all()
    surgical = clean["case_adrg"].str[1].between("A", "J")
    assert 0.15 < surgical.mean() < 0.5


def test_tertiary_hospitals_treat_more_surgical_and_pre_mdc_cases(rows, plan):
    from casemix.generate.province import GRADES

    grade_of = dict(zip(plan.hospital_ids, (GRADES[g] for g in plan.hospital_grade)))
    clean = rows[rows["defect_kind"].isna() & (rows["case_status"] == "grouped")]
    grade = clean["医疗机构编码"].map(grade_of)
    surgical = clean["case_adrg"].str[1].between("A", "J")
    by_grade = surgical.groupby(grade).mean()
    assert by_grade["三级"] > by_grade["二级"] > by_grade["一级"]
    assert (clean.loc[grade == "一级", "case_mdc"] == "MDCA").sum() == 0


def test_discharge_statuses_long_stays_and_length_of_stay_are_realistic(rows):
    clean = rows[rows["defect_kind"].isna() & (rows["row_role"] == "original")]
    status = clean["离院方式"].value_counts(normalize=True)
    assert status["1"] > 0.9 and {"2", "5"} <= set(status.index)
    los = clean["住院天数"].astype(int)
    assert (los >= 1).all() and 5 <= los.median() <= 12
    assert 0 < (los > 60).mean() < 0.02


def test_the_catalogue_has_verified_templates_for_every_adrg_rule_of_the_scheme(plan):
    stats = plan.catalogue.stats
    assert stats["rules_without_templates"] == [] and stats["rules_with_templates"] == stats["rules"] == 376
    assert stats["ungroupable_templates"] > 50 and stats["ambiguous_templates"] > 50
