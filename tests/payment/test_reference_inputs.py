"""The hospital register and audit-deduction files: loaded when clean, refused with every bad row listed."""
from __future__ import annotations

from decimal import Decimal

import pytest

from casemix.payment import RegisterError, read_deductions, read_register


def test_a_clean_register_loads(spark, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("hospital_id,region,name,grade,hospital_type\nH1,R1,一院,三级,general\nH2,R1,,一级,tcm\n",
                    encoding="utf-8")
    rows = {r["hospital_id"]: (r["region"], r["name"], r["grade"], r["hospital_type"])
            for r in read_register(spark, path).collect()}
    assert rows == {"H1": ("R1", "一院", "三级", "general"), "H2": ("R1", None, "一级", "tcm")}


def test_a_register_with_bad_rows_is_refused_with_each_problem(spark, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("hospital_id,region,name,grade,hospital_type\nH1,R1,,三甲,general\nH1,R1,,二级,clinic\n"
                    ",R1,,二级,general\n", encoding="utf-8")
    with pytest.raises(RegisterError) as err:
        read_register(spark, path)
    text = str(err.value)
    assert "3 bad row(s)" in text and "line 2: grade '三甲'" in text
    assert "line 3: hospital_type 'clinic'" in text and "H1 already on line 2" in text and "line 4: empty hospital_id" in text
    with pytest.raises(RegisterError, match="header lacks column"):
        (tmp_path / "x.csv").write_text("id,region\n", encoding="utf-8")
        read_register(spark, tmp_path / "x.csv")


def test_deductions_load_and_bad_ones_are_refused(spark, tmp_path):
    good = tmp_path / "d.csv"
    good.write_text("deduction_id,region,hospital_id,month,amount,reason\nD1,R1,H1,2025-03,1234.5,upcoding\n",
                    encoding="utf-8")
    [row] = read_deductions(spark, good).collect()
    assert (row["month"], row["amount"], row["reason"]) == ("2025-03", Decimal("1234.50"), "upcoding")
    bad = tmp_path / "b.csv"
    bad.write_text("deduction_id,region,hospital_id,month,amount,reason\nD1,R1,H1,2025-13,1.5,x\n"
                   "D2,R1,H1,2025-01,-3,x\nD3,R1,H1,2025-01,1.234,x\nD3,R1,H1,2025-01,abc,\n", encoding="utf-8")
    with pytest.raises(RegisterError) as err:
        read_deductions(spark, bad)
    text = str(err.value)
    assert "4 bad row(s)" in text and "month '2025-13'" in text and "amount '-3'" in text
    assert "amount '1.234'" in text and "D3 already on line 4" in text
