"""Hand-worked grouping cases on the real chs-drg-1.1 data.

Every expected result below was worked out by hand from the scheme files
(mdc.json / adrg.json / drg_splits.json / mcc.csv / cc.csv / principal_exclusion.csv /
surgical_procedures.csv); the facts used are quoted in the comments.  The ``group``
fixture also checks the reference implementation gives the identical result.

Facts used (chs-drg-1.1):
* MDC order: A, P, Y, Z, M, N, B, C, ..., X.  QY checks are all disabled.
* 37.5100 (heart transplant) is surgical and the only code of AA1.ss.
* 35.0101 is surgical, in FB1.ss, FB2.ss and PB1.ss only.  47.0900 is surgical and in no rule list.
* 52.8000 in AC1.ss and AD1.ss; 55.6100 in AC1.ss1 and AE1.ss.
* I21.001: only in the MDCF list, in FR1.zd and FK1.zd; MCC table 93, principal exclusion table 93.
* I50.900: MCC, table 95.  I44.200: only MDCF, only FU1.zd; principal exclusion table 95.
  J96.000: MCC table 109.  E87.100: CC table 52.  I30.000: CC table 95.
* P22.000: MDCP list, PR1.zd.  P23.900: MDCP list, PU1.zd, CC table 165.
  P07.200: MDCP list, PS1..PS4.zd, not MCC/CC.
* B20.000x001: MDCY list, YR1.zd.  B20.001: MDCY list, YC1.zd and YR1.zd, MCC table 13, excl. table 13.
* S06.000: MDCZ and MDCB lists, trauma site 0 (head), BB1.zd/BY1.zd, CC table 196, excl. table 196.
  S01.801: trauma site 0, CC table 196.  S71.800x011: trauma site 7 (lower limb), CC table 203.
* C61.x00 and C60.000: only the MDCM list (MA1.zd, MR1.zd).  40.2400: surgical, in MA1.ss.
  C51.000: only the MDCN list (NA1/NA2/NR1.zd).
* C50.900x005: only the MDCJ list (JA1/JA2/JR1.zd).  JA1: cat1+cat2 or cat1+cat3+cat4;
  JA2: cat1 or cat2+cat3.  85.5300x001 = JA1 cat1; 85.4301/85.4303 = JA1 cat2 = JA2 cat1;
  85.2100x003 = JA1 cat3 = JA2 cat2 (also JB3.ss); 40.2100 = JA1 cat4 = JA2 cat3.
* I10.x00 and A00.000 are valid diagnoses in no MDC list.
"""
from __future__ import annotations

import pytest

CHS = "chs-drg-1.1"


def check(r, mdc, adrg, drg, status="grouped"):
    assert (r["mdc"], r["adrg"], r["drg"], r["status"]) == (mdc, adrg, drg, status), r["trace"]


# ----------------------------------------------------------------------------- MDC entry


def test_pre_mdc_a_by_surgical_principal_procedure(group):
    # 37.5100 is surgical -> MDCA entered; AA1 = principal_proc_in(ss) with ss = [37.5100] -> AA19 (always)
    r = group(CHS, principal_dx="I21.001", procedures=["37.5100"])
    check(r, "MDCA", "AA1", "AA19")
    assert r["trace"] == "MDCA:entry=principal_proc_in(@surgical);ADRG=AA1(rule AA1):principal_proc_in(ss);DRG=AA19:always"


def test_mdca_only_by_principal_procedure(group):
    # the same procedure in second position does not enter MDCA (position-based principal procedure);
    # I21.001 with no principal match in MDCF's surgical ADRGs (FB1 needs ss+ss1, FK1 needs its ss) -> FR1 -> FR19
    r = group(CHS, principal_dx="I21.001", procedures=["89.5200", "37.5100"])
    check(r, "MDCF", "FR1", "FR19")


def test_mdca_any_proc_pair_ac1_in_any_order(group):
    # AC1 = any_proc_in(ss) & any_proc_in(ss1): pancreas 52.8000 (ss) + kidney 55.6100 (ss1), any positions
    check(group(CHS, principal_dx="E10.200", procedures=["52.8000", "55.6100"]), "MDCA", "AC1", "AC19")
    check(group(CHS, principal_dx="E10.200", procedures=["55.6100", "52.8000"]), "MDCA", "AC1", "AC19")
    # pancreas alone: AC1 fails, AD1 = principal_proc_in(ss) with 52.8000 -> AD19
    check(group(CHS, principal_dx="E10.200", procedures=["52.8000"]), "MDCA", "AD1", "AD19")


def test_mdca_fallthrough_then_mdcf_fb2_with_mcc(group):
    # 35.0101 is surgical -> MDCA entered, but no MDCA rule lists it -> MDCA falls through (not a failure).
    # I21.001 is only in MDCF; FB1 needs a second FB1.ss1 procedure; FB2 = principal_proc_in(ss) holds.
    # I50.900 is an MCC (table 95), I21.001's exclusion table is 93 -> counted -> FB21 (mcc).
    r = group(CHS, principal_dx="I21.001", secondary_dxs=["I50.900"], procedures=["35.0101"])
    check(r, "MDCF", "FB2", "FB21")
    assert r["has_mcc"] is True and r["cc_code"] == "I50.900"
    assert r["trace"] == ("MDCA:fallthrough;MDCF:entry=principal_dx_in(zd);ADRG=FB2(rule FB2):principal_proc_in(ss);"
                          "DRG=FB21:mcc(I50.900)")


def test_mdcf_mcc_excluded_by_same_table(group):
    # I21.002 is an MCC with table 93 = exclusion table of the principal I21.001 -> ignored -> FB25
    r = group(CHS, principal_dx="I21.001", secondary_dxs=["I21.002"], procedures=["35.0101"])
    check(r, "MDCF", "FB2", "FB25")
    assert (r["has_mcc"], r["has_cc"], r["cc_code"]) == (False, False, None)


def test_mdcp_by_age_zero(group):
    # P22.000 is in the MDCP list; age_years 0 -> MDCP. No procedures -> PB1..PK1 fail; QY disabled;
    # PR1 = principal_dx_in(zd)&age_days_lte(28), 5 days -> PR1; no secondaries -> PR15 (always)
    r = group(CHS, principal_dx="P22.000", age_years=0, age_days=5, birth_weight_g=3000)
    check(r, "MDCP", "PR1", "PR15")
    # same diagnosis at age 1: MDCP not entered and P22.000 is in no other MDC list -> 0000
    check(group(CHS, principal_dx="P22.000", age_years=1), "0000", "00", "0000", "ungroupable")


def test_mdcy_hiv_principal(group):
    # B20.000x001 in MDCY list; YC1 needs a surgical principal procedure; YR1 principal_dx_in(zd) -> YR15
    check(group(CHS, principal_dx="B20.000x001"), "MDCY", "YR1", "YR15")


def test_mdcy_not_entered_by_secondary_hiv_in_chs(group):
    # CHS: MDCY entry is principal_dx_in only. I21.001 + HIV secondary + surgical 47.0900 (in no rule list):
    # MDCA falls through, MDCY not entered, MDCF surgical ADRGs do not list 47.0900, QY off -> FR1 -> FR19
    r = group(CHS, principal_dx="I21.001", secondary_dxs=["B20.001"], procedures=["47.0900"])
    check(r, "MDCF", "FR1", "FR19")
    assert r["trace"].startswith("MDCA:fallthrough;MDCF:entry")


def test_any_dx_in_yc1(group):
    # YC1 = any_dx_in(zd)&principal_proc_in(@surgical): B20.001 in YC1.zd, 47.0900 surgical.
    # B20.001 is an MCC but of its own exclusion table 13 -> not counted; no other secondary -> YC15
    r = group(CHS, principal_dx="B20.001", procedures=["47.0900"])
    check(r, "MDCY", "YC1", "YC15")


def test_mdcz_two_trauma_sites(group):
    # S06.000 (site 0 head) + S71.800x011 (site 7 lower limb) = 2 distinct sites -> MDCZ.
    # No procedures: ZB1..ZJ1 need a principal procedure; ZZ1 = !any_proc_in(@surgical) -> ZZ1.
    # S71.800x011 is a CC (table 203 != 196) but ZZ1 splits on mcc only -> ZZ15
    r = group(CHS, principal_dx="S06.000", secondary_dxs=["S71.800x011"])
    check(r, "MDCZ", "ZZ1", "ZZ15")
    assert (r["has_mcc"], r["has_cc"], r["cc_code"]) == (False, True, "S71.800x011")


def test_mdcz_not_entered_with_one_site(group):
    # S06.000 + S01.801 are both head (site 0) -> 1 site -> MDCZ not entered -> MDCB (S06.000 in MDCB list);
    # BB1 needs a procedure; only BY1 lists S06.000 -> BY1. S01.801 is a CC of table 196 = exclusion table
    # of S06.000 -> excluded -> BY15
    r = group(CHS, principal_dx="S06.000", secondary_dxs=["S01.801"])
    check(r, "MDCB", "BY1", "BY15")
    assert r["has_cc"] is False


def test_mdcz_trauma_sites_count_the_principal(group):
    # the two sites may come from the secondaries only... but the principal must be in MDCZ's list
    # (S06.000 is); secondaries S01.801 (site 0) + S71.800x011 (site 7) -> 2 sites -> MDCZ
    r = group(CHS, principal_dx="S06.000", secondary_dxs=["S01.801", "S71.800x011"])
    check(r, "MDCZ", "ZZ1", "ZZ15")


def test_mdcm_male_and_mdcn_female(group):
    # C61.x00 only in MDCM list; MDCM requires sex 1; no procedure -> MR1 (principal_dx_in) -> MR15
    check(group(CHS, principal_dx="C61.x00", sex="1"), "MDCM", "MR1", "MR15")
    check(group(CHS, principal_dx="C61.x00", sex="M"), "MDCM", "MR1", "MR15")
    # female: MDCM not entered, no other MDC lists C61.x00 -> 0000
    r = group(CHS, principal_dx="C61.x00", sex="2")
    check(r, "0000", "00", "0000", "ungroupable")
    assert r["trace"] == "NOGROUP=0000"
    # C51.000 only in MDCN list (sex 2) -> NR1 (principal_dx_in) -> NR15
    check(group(CHS, principal_dx="C51.000", sex="2"), "MDCN", "NR1", "NR15")
    check(group(CHS, principal_dx="C51.000", sex=1), "0000", "00", "0000", "ungroupable")


# ----------------------------------------------------------------------------- ADRG condition shapes


def test_principal_dx_plus_principal_proc_ma1(group):
    # MA1 = principal_dx_in(zd)&principal_proc_in(ss): C60.000 + 40.2400 (surgical, not in MDCA rules)
    # -> MDCA falls through -> MDCM (male) -> MA1 -> MA19
    r = group(CHS, principal_dx="C60.000", procedures=["40.2400"])
    check(r, "MDCM", "MA1", "MA19")
    assert r["trace"] == ("MDCA:fallthrough;MDCM:entry=principal_dx_in(zd)&sex_eq(1);"
                          "ADRG=MA1(rule MA1):principal_dx_in(zd)&principal_proc_in(ss);DRG=MA19:always")


def test_ss_cat_lists_ja1_ja2(group):
    kw = dict(principal_dx="C50.900x005", sex="2")
    # JA1 first alternative: cat1 (85.5300x001) + cat2 (85.4301) -> JA19
    check(group(CHS, procedures=["85.5300x001", "85.4301"], **kw), "MDCJ", "JA1", "JA19")
    # JA1 second alternative: cat1 + cat3 (85.2100x003) + cat4 (40.2100) -> JA19
    check(group(CHS, procedures=["85.2100x003", "40.2100", "85.5300x001"], **kw), "MDCJ", "JA1", "JA19")
    # no JA1 cat1 -> JA1 fails; 85.4303 is JA2 cat1 -> JA29
    check(group(CHS, procedures=["85.4303"], **kw), "MDCJ", "JA2", "JA29")
    # JA2 second alternative: cat2 (85.2100x003) + cat3 (40.2100) -> JA29
    check(group(CHS, procedures=["85.2100x003", "40.2100"], **kw), "MDCJ", "JA2", "JA29")
    # cat2 alone: JA1 and JA2 fail; JB3 = principal_proc_in(ss) lists 85.2100x003 -> JB39
    check(group(CHS, procedures=["85.2100x003"], **kw), "MDCJ", "JB3", "JB39")


def test_newborn_age_days_principal_proc_pb1(group):
    # PB1 = principal_proc_in(ss)&age_days_lte(28): 35.0101 is in PB1.ss (and surgical: MDCA falls through)
    r = group(CHS, principal_dx="P23.900", age_years=0, age_days=10, birth_weight_g=3000, procedures=["35.0101"])
    check(r, "MDCP", "PB1", "PB19")


@pytest.mark.parametrize("weight,adrg,drg", [
    (1499, "PS1", "PS15"),   # birth_weight_lt(1500)
    (1500, "PS2", "PS25"),   # birth_weight_gte(1500)&birth_weight_lt(2000)
    (1999, "PS2", "PS25"),
    (2000, "PS3", "PS39"),   # gte 2000 & lt 2500
    (2499, "PS3", "PS39"),
    (2500, "PS4", "PS45"),   # gte 2500
])
def test_birth_weight_bands_any_dx_in(group, weight, adrg, drg):
    # P23.900 (MDCP list, not in PR1.zd) principal, P07.200 as SECONDARY: PS* use any_dx_in(zd).
    # P07.200 is not MCC/CC -> last split of each band.
    r = group(CHS, principal_dx="P23.900", secondary_dxs=["P07.200"], age_years=0, age_days=3, birth_weight_g=weight)
    check(r, "MDCP", adrg, drg)


def test_newborn_pu1_and_pv1_always(group):
    # no PS code: PU1 = principal_dx_in(zd)&age_days_lte(28) lists P23.900 -> PU15 (P23.900 itself is a CC
    # but only secondaries count)
    check(group(CHS, principal_dx="P23.900", age_years=0, age_days=20, birth_weight_g=3200), "MDCP", "PU1", "PU15")
    # 40 days: every age_days_lte(28) rule fails -> PV1 = always -> PV13 (mcc_or_cc) needs a CC; none -> PV15
    check(group(CHS, principal_dx="P23.900", age_years=0, age_days=40, birth_weight_g=3200), "MDCP", "PV1", "PV15")
    # with a counted CC (E87.100, table 52 != 165) -> PV13
    r = group(CHS, principal_dx="P23.900", secondary_dxs=["E87.100"], age_years=0, age_days=40, birth_weight_g=3200)
    check(r, "MDCP", "PV1", "PV13")
    assert r["trace"].endswith("DRG=PV13:mcc_or_cc(E87.100)")


# ----------------------------------------------------------------------------- CC / MCC


@pytest.mark.parametrize("secondaries,drg,has_mcc,has_cc,cc_code", [
    ([], "FU15", False, False, None),
    (["J96.000"], "FU11", True, False, "J96.000"),            # MCC, table 109 != 95
    (["E87.100"], "FU13", False, True, "E87.100"),            # CC, table 52 != 95
    (["I50.900"], "FU15", False, False, None),                # MCC of table 95 = principal's -> ignored, NOT a CC
    (["I30.000"], "FU15", False, False, None),                # CC of table 95 -> excluded
    (["E87.100", "J96.000"], "FU11", True, True, "J96.000"),  # MCC wins for cc_code even if listed later
    (["I50.900", "E87.100"], "FU13", False, True, "E87.100"),  # excluded MCC + counted CC
    (["I44.200"], "FU15", False, False, None),                # the principal repeated is an ordinary secondary
])
def test_mcc_cc_exclusion_fu1(group, secondaries, drg, has_mcc, has_cc, cc_code):
    # I44.200: only MDCF and FU1.zd; exclusion table 95. FU1 splits: FU11 mcc, FU13 mcc_or_cc, FU15 always
    r = group(CHS, principal_dx="I44.200", secondary_dxs=secondaries)
    check(r, "MDCF", "FU1", drg)
    assert (r["has_mcc"], r["has_cc"], r["cc_code"]) == (has_mcc, has_cc, cc_code)


# ----------------------------------------------------------------------------- no group / vocabulary


def test_no_group_0000(group):
    # I10.x00 is a valid diagnosis in no MDC list; no procedure -> nothing entered -> 0000
    r = group(CHS, principal_dx="I10.x00")
    check(r, "0000", "00", "0000", "ungroupable")
    assert r["invalid_reason"] is None and r["trace"] == "NOGROUP=0000"


def test_code_referenced_but_not_in_diagnoses_csv_is_known(group):
    # K43.900 is not in diagnoses.csv but is in MDCG's list and GZ1.zd -> known, groups (GZ1 -> GZ1x)
    r = group(CHS, principal_dx="K43.900")
    assert r["status"] == "grouped" and r["mdc"] == "MDCG" and r["adrg"] == "GZ1"
