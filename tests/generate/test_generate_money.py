"""Money adds up to the fen: total = fund + 自付 + 自费, fund and categories within the total."""
from __future__ import annotations

from decimal import Decimal


def _money(series):
    return series.map(Decimal)


def test_total_is_fund_plus_self_pay_plus_out_of_pocket_exactly(clean_records):
    total = _money(clean_records["总费用"])
    parts = _money(clean_records["基金支付"]) + _money(clean_records["个人自付"]) + _money(clean_records["个人自费"])
    assert (total == parts).all()
    assert (_money(clean_records["基金支付"]) <= total).all()
    assert (_money(clean_records["基金支付"]) >= 0).all() and (_money(clean_records["个人自费"]) >= 0).all()
    categories = _money(clean_records["药品费"]) + _money(clean_records["耗材费"]) + _money(clean_records["检查费"])
    assert (categories <= total).all()
    assert all(len(v.split(".")[1]) == 2 for v in clean_records["总费用"])


def test_employees_pay_a_smaller_share_themselves_than_residents(clean_records):
    total = _money(clean_records["总费用"]).astype(float)
    own = (_money(clean_records["个人自付"]) + _money(clean_records["个人自费"])).astype(float)
    share = (own / total).groupby(clean_records["险种"]).mean()
    assert share["职工"] < share["居民"]


def test_outpatient_visits_add_up_and_carry_family_doctor_signing(generated):
    import pandas as pd

    visits = pd.read_parquet(generated.root / "outpatient")
    assert len(visits) == generated.summary["outpatient_visits"] > 0
    total = _money(visits["总费用"])
    assert (total == _money(visits["基金支付"]) + _money(visits["个人自付"]) + _money(visits["个人自费"])).all()
    assert set(visits["签约家庭医生"]) == {"是", "否"}
    signed = visits["签约家庭医生"] == "是"
    assert visits.loc[signed, "签约机构编码"].notna().all() and visits.loc[~signed, "签约机构编码"].isna().all()
    assert 0.2 < signed.mean() < 0.6
