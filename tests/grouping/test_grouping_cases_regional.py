"""Hand-worked cases for yunnan-2023 and zhejiang-2022 (terms / driver features only they have).

Facts used (from the scheme files):
yunnan-2023
* QY checks enabled in MDCP, Z, M, N, B..L, O, Q, R, U, V, when = principal_proc_in(@surgical);
  disabled in MDCA, Y, S, T, W, X.  No-group code 0000A.  Empty age_days/weight count as 0.
* I21.001: only MDCF; in FK1.zd / FR1.zd.  47.0900: surgical, in no rule list.
* O80.000: only MDCO, in no rule list.  Z37.000: in OR1.zd1 only, not MCC/CC.
  OR1 = secondary_dx_in(zd1) -> OR11 mcc / OR13 mcc_or_cc / OR15.
* T20.000: only MDCW, WZ1.zd; excl. table 209.  T31.300: MDCW, WB1_1/WR1_1.zd, WB1_2/WR1_2.zd1; MCC 211.
  85.8200: surgical, WB1_1.ss / WB1_2.ss (and JB1, VB1, WC1), not in MDCA rules.
* R75.x00x001: MDCY list, YR2.zd, excl. table 192.  B20.001: YR1.zd, MCC table 13.
  YC1 = any_proc_in(@surgical); YR1 = any_dx_in(zd); YR2 = any_dx_in(zd).
* P23.900: MDCP list, PU1.zd (PU11 mcc, PU13 mcc_or_cc, PU15).
zhejiang-2022
* MDCA entry: principal_proc_in(@surgical) | principal_proc_in(entry_ss = 96.0400, 96.7201).
  AH1 = principal_proc_in(ss = 39.6500, 96.7201), splits AH11 procs_include_all(39.6500),
  AH13 procs_include_all(96.7201+39.9500x007), AH19 procs_include_all(96.7201); 39.6500 is not surgical
  and is also in FB1.ss (zhejiang FB1 = principal_proc_in(ss)).
* MDCY entry any_dx_in(zd); YC1 = principal_proc_in(@surgical) -> YC19.
* Medical ADRGs: principal_dx_in(zd)&!principal_proc_in(@surgical).  I21.001: only MDCF, FR2.zd
  (FR21 mcc, FR23 mcc_or_cc, FR25, FR29 dept_eq(ICU) unreachable).
* G40.900: only MDCB, only BV1.zd; BV1 splits BV10 age_years_lt(17), BV11 mcc, BV13 mcc_or_cc, BV15.
* I60.000: only MDCB, BR1.zd; BR1 splits BR11 mcc, BR13 mcc_or_cc, BR15 always, BR19 dept_eq(ICU).
* Retry with each later procedure alone when nothing groups.  A00.000: valid, in no MDC list.
  89.5200: known non-surgical procedure, in no rule list.  37.5100: surgical, AA1.ss.
"""
from __future__ import annotations

YN = "yunnan-2023"
ZJ = "zhejiang-2022"
CHS = "chs-drg-1.1"


def check(r, mdc, adrg, drg, status="grouped"):
    assert (r["mdc"], r["adrg"], r["drg"], r["status"]) == (mdc, adrg, drg, status), r["trace"]


# ----------------------------------------------------------------------------- yunnan


def test_yunnan_qy_and_the_same_record_elsewhere(group):
    # I21.001 + surgical 47.0900 (in no rule list): MDCA falls through (AQY disabled); MDCF's surgical ADRGs
    # do not list 47.0900; the enabled QY check (principal_proc_in @surgical) comes before the medical ADRGs
    r = group(YN, principal_dx="I21.001", procedures=["47.0900"])
    check(r, "MDCF", "QY", "FQY", "QY")
    assert r["trace"] == "MDCA:fallthrough;MDCF:entry=principal_dx_in(zd);QY=FQY:principal_proc_in(@surgical)"
    # CHS: QY disabled -> medical FR1 (principal_dx_in) -> FR19
    check(group(CHS, principal_dx="I21.001", procedures=["47.0900"]), "MDCF", "FR1", "FR19")
    # zhejiang: QY disabled and every medical ADRG requires a NON-surgical principal procedure -> MDCF
    # falls through too -> 0000 (one procedure only, so no retry)
    r = group(ZJ, principal_dx="I21.001", procedures=["47.0900"])
    check(r, "0000", "00", "0000", "ungroupable")
    assert r["trace"] == "MDCA:fallthrough;MDCF:fallthrough;NOGROUP=0000"


def test_yunnan_qy_not_triggered_by_non_surgical_principal(group):
    # 89.5200 is not surgical -> QY check false -> FR1 (FR13 mcc_or_cc, FR15): no secondary -> FR15
    check(group(YN, principal_dx="I21.001", procedures=["89.5200"]), "MDCF", "FR1", "FR15")


def test_yunnan_no_group_0000A(group):
    r = group(YN, principal_dx="A00.000")
    check(r, "0000", "00", "0000A", "ungroupable")
    assert r["trace"] == "NOGROUP=0000A"
    check(group(CHS, principal_dx="A00.000"), "0000", "00", "0000", "ungroupable")


def test_yunnan_secondary_dx_in_or1(group):
    # O80.000 (MDCO, female) with Z37.000 as secondary: OB1..OJ1 need procedures, QY needs a surgical
    # principal procedure; OR1 = secondary_dx_in(zd1) -> OR1; Z37.000 is no CC -> OR15
    check(group(YN, principal_dx="O80.000", sex="2", secondary_dxs=["Z37.000"]), "MDCO", "OR1", "OR15")


def test_yunnan_secondary_dx_in_wr1_2_and_wb1_2(group):
    # T20.000 (MDCW, not in WB1_1/WR1_1.zd) + T31.300 secondary (zd1 of WB1_2/WR1_2; MCC 211 != 209)
    r = group(YN, principal_dx="T20.000", secondary_dxs=["T31.300"])
    check(r, "MDCW", "WR1", "WR11")  # rule WR1_2 (alternative rule of ADRG WR1), split mcc
    assert "ADRG=WR1(rule WR1_2):secondary_dx_in(zd1)" in r["trace"]
    # + principal procedure 85.8200 (surgical; WB1_2.ss): MDCA falls through, WB1_2 -> WB19
    r = group(YN, principal_dx="T20.000", secondary_dxs=["T31.300"], procedures=["85.8200"])
    check(r, "MDCW", "WB1", "WB19")
    assert "ADRG=WB1(rule WB1_2):secondary_dx_in(zd1)&principal_proc_in(ss)" in r["trace"]


def test_yunnan_any_dx_in_yr1(group):
    # R75.x00x001 enters MDCY (principal); YC1 needs any surgical procedure; YR1 = any_dx_in(zd) is
    # satisfied by the SECONDARY B20.001 (before YR2); B20.001 is an MCC (13 != 192) -> YR11
    r = group(YN, principal_dx="R75.x00x001", secondary_dxs=["B20.001"])
    check(r, "MDCY", "YR1", "YR11")
    assert r["cc_code"] == "B20.001"
    # without it: YR2 (any_dx_in lists R75.x00x001) -> YR29
    check(group(YN, principal_dx="R75.x00x001"), "MDCY", "YR2", "YR29")


def test_yunnan_missing_age_days_counts_as_zero(group):
    # yunnan converts an empty age_days to 0 (no MISSING_AGE_DAYS check): newborn rule PU1 applies;
    # weight empty -> 0 -> unknown (no band), -> PU1 -> PU15
    check(group(YN, principal_dx="P23.900", age_years=0), "MDCP", "PU1", "PU15")
    # the CHS proxy rejects the same record
    r = group(CHS, principal_dx="P23.900", age_years=0)
    assert (r["status"], r["invalid_reason"]) == ("invalid", "MISSING_AGE_DAYS")


# ----------------------------------------------------------------------------- zhejiang


def test_zhejiang_mdcy_entered_by_secondary_hiv(group):
    # zhejiang MDCY entry is any_dx_in(zd): the secondary B20.001 enters MDCY; 47.0900 is a surgical
    # principal procedure (MDCA falls through first) -> YC1 principal_proc_in(@surgical) -> YC19
    r = group(ZJ, principal_dx="I21.001", secondary_dxs=["B20.001"], procedures=["47.0900"])
    check(r, "MDCY", "YC1", "YC19")
    assert r["trace"].startswith("MDCA:fallthrough;MDCY:entry=any_dx_in(zd);")


def test_zhejiang_medical_not_surgical_fr2(group):
    # I21.001, no procedure: FR2 = principal_dx_in(zd)&!principal_proc_in(@surgical) -> FR25
    r = group(ZJ, principal_dx="I21.001")
    check(r, "MDCF", "FR2", "FR25")
    assert r["trace"] == ("MDCF:entry=principal_dx_in(zd);ADRG=FR2(rule FR2):principal_dx_in(zd)&"
                          "!principal_proc_in(@surgical);DRG=FR25:always")


def test_zhejiang_age_years_lt_17(group):
    # BV1 first split age_years_lt(17)
    check(group(ZJ, principal_dx="G40.900", age_years=10), "MDCB", "BV1", "BV10")
    check(group(ZJ, principal_dx="G40.900", age_years=16), "MDCB", "BV1", "BV10")
    # 17 is not < 17; no secondaries -> BV15
    check(group(ZJ, principal_dx="G40.900", age_years=17), "MDCB", "BV1", "BV15")
    # adult with an MCC (zhejiang: J96.000 MCC table 94, G40.900 exclusion table 61) -> BV11
    check(group(ZJ, principal_dx="G40.900", age_years=40, secondary_dxs=["J96.000"]), "MDCB", "BV1", "BV11")
    # a child with the same MCC: age_years_lt(17) is tried first -> BV10
    check(group(ZJ, principal_dx="G40.900", age_years=5, secondary_dxs=["J96.000"]), "MDCB", "BV1", "BV10")
    # zhejiang's CC/MCC tables differ from CHS: E87.100 (a CHS CC) is no CC here -> BV15
    check(group(ZJ, principal_dx="G40.900", age_years=40, secondary_dxs=["E87.100"]), "MDCB", "BV1", "BV15")


def test_zhejiang_dept_icu_split_is_after_always(group):
    # BR1's dept_eq(ICU) DRG BR19 comes after the 'always' BR15 in the source -> never returned:
    # an ICU stay still gets BR15 (the predicate itself is tested on a modified scheme in test_grouping_scheme)
    check(group(ZJ, principal_dx="I60.000", dept="ICU"), "MDCB", "BR1", "BR15")


def test_zhejiang_procs_include_all_ah1(group):
    kw = dict(principal_dx="I21.001")
    # 96.7201 enters MDCA through entry_ss; AH1 principal 96.7201; ECMO 39.6500 anywhere -> AH11
    check(group(ZJ, procedures=["96.7201", "39.6500"], **kw), "MDCA", "AH1", "AH11")
    # 96.7201 + 39.9500x007 -> AH13
    check(group(ZJ, procedures=["96.7201", "39.9500x007"], **kw), "MDCA", "AH1", "AH13")
    # all three: the first split that holds wins -> AH11
    check(group(ZJ, procedures=["96.7201", "39.9500x007", "39.6500"], **kw), "MDCA", "AH1", "AH11")
    # 96.7201 alone -> AH19
    r = group(ZJ, procedures=["96.7201"], **kw)
    check(r, "MDCA", "AH1", "AH19")
    assert r["trace"].endswith("DRG=AH19:procs_include_all(96.7201)")
    # 39.6500 as principal is neither surgical nor in entry_ss -> MDCA not entered; I21.001 -> MDCF,
    # whose FB1 = principal_proc_in(ss) lists 39.6500 -> FB19
    check(group(ZJ, procedures=["39.6500"], **kw), "MDCF", "FB1", "FB19")
    # a non-surgical principal procedure in no MDCF list lets the medical FR2 match -> FR25
    check(group(ZJ, procedures=["89.5200"], **kw), "MDCF", "FR2", "FR25")


def test_zhejiang_retry_with_single_secondary_procedure(group):
    # A00.000 is in no MDC list; principal procedure 89.5200 is not surgical -> first pass 0000.
    # Retry with procedure 2 alone (37.5100): MDCA -> AA1 -> AA19
    r = group(ZJ, principal_dx="A00.000", procedures=["89.5200", "37.5100"])
    check(r, "MDCA", "AA1", "AA19")
    assert r["trace"] == ("NOGROUP=0000;RETRY=2(37.5100);MDCA:entry=principal_proc_in(@surgical)|"
                          "principal_proc_in(entry_ss);ADRG=AA1(rule AA1):principal_proc_in(ss);DRG=AA19:always")
    # the retry goes on in order until a result is not 0000
    r = group(ZJ, principal_dx="A00.000", procedures=["89.5200", "89.5200", "37.5100"])
    check(r, "MDCA", "AA1", "AA19")
    assert r["trace"].startswith("NOGROUP=0000;RETRY=2(89.5200);NOGROUP=0000;RETRY=3(37.5100);MDCA:entry")
    # all retries fail -> 0000
    r = group(ZJ, principal_dx="A00.000", procedures=["89.5200", "89.5200"])
    check(r, "0000", "00", "0000", "ungroupable")
    assert r["trace"] == "NOGROUP=0000;RETRY=2(89.5200);NOGROUP=0000"
    # CHS and yunnan do not retry
    check(group(CHS, principal_dx="A00.000", procedures=["89.5200", "37.5100"]), "0000", "00", "0000", "ungroupable")
    check(group(YN, principal_dx="A00.000", procedures=["89.5200", "37.5100"]), "0000", "00", "0000A", "ungroupable")


def test_zhejiang_retry_sees_only_the_single_procedure(group):
    # first pass: 89.5200 principal -> nothing (A00.000); retry with 96.7201 alone: AH1 -> only AH19 can hold
    # because 39.6500 (procedure 3) is not part of that run; had it been, AH11 would win
    r = group(ZJ, principal_dx="A00.000", procedures=["89.5200", "96.7201", "39.6500"])
    check(r, "MDCA", "AH1", "AH19")
