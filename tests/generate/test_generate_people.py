"""People are consistent across their claims; readmissions re-admit the same person into the same DRG."""
from __future__ import annotations

from ._reference_checks import parse_date


def test_a_person_has_the_same_sex_birth_date_national_id_and_scheme_in_every_claim(clean_records):
    per_person = clean_records.assign(
        sex=clean_records["性别"].map({"1": "1", "男": "1", "2": "2", "女": "2"}),
        birth=clean_records["出生日期"].map(parse_date),
    ).groupby("人员编号").agg({"sex": "nunique", "birth": "nunique", "身份证号": "nunique", "险种": "nunique"})
    assert (per_person == 1).all().all()
    nid = clean_records["身份证号"]
    born = clean_records["出生日期"].map(lambda s: parse_date(s).strftime("%Y%m%d"))
    assert (nid.str[6:14] == born).all()
    male = clean_records["性别"].isin(["1", "男"])
    assert (nid.str[16].astype(int) % 2 == male.astype(int)).all()
    assert (nid.str[:4] == clean_records["统筹区"].str[:4]).all()


def test_readmissions_within_15_days_keep_the_person_hospital_and_drg(rows):
    clean = rows[rows["defect_kind"].isna() & (rows["row_role"] == "original")]
    by_claim = rows[rows["row_role"] == "original"].set_index("结算清单号")
    readm = clean[clean["readmission_of"].notna()]
    assert 0.01 < len(readm) / len(clean) < 0.05
    within = readm[readm["readmission_gap_days"] <= 15]
    assert len(within) > 0.5 * len(readm)
    for r in within.itertuples(index=False):
        row = r._asdict()
        parent = by_claim.loc[row["readmission_of"]]
        assert parent["人员编号"] == row["人员编号"] and parent["医疗机构编码"] == row["医疗机构编码"]
        assert parent["case_adrg"] == row["case_adrg"] and parent["case_drg"] == row["case_drg"]
        gap = parse_date(row["入院日期"]) - parse_date(parent["出院日期"])
        assert 1 <= gap.days == row["readmission_gap_days"] <= 15
