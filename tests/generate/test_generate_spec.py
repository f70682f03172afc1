"""The spec and the province file are validated, typed, and say what is wrong."""
from __future__ import annotations

import numpy as np
import pytest

from casemix.config import ConfigError
from casemix.generate import GeneratorSpec, SpecError, load_province
from casemix.generate.plan import chinese_numeral
from casemix.generate.rng import Draws, mix64
from casemix.ingest.raw import DEFECT_KINDS


def test_spec_defaults_are_three_years_ten_outpatient_visits_per_case_and_one_percent_bad_records():
    spec = GeneratorSpec()
    assert spec.years == (2022, 2023, 2024)
    assert spec.outpatient_multiple == 10 and spec.bad_record_share == 0.01
    assert spec.scheme_id == "chs-drg-1.1"
    assert set(spec.defect_weights) == set(DEFECT_KINDS) and len(set(spec.defect_weights.values())) == 1
    assert GeneratorSpec(n_cases=1000).n_visits == 10_000


@pytest.mark.parametrize("bad, message", [
    ({"n_cases": 10, "typo": 1}, "typo"),
    ({"years": (2022, 2024)}, "consecutive"),
    ({"defect_weights": {"negative_cost": 1.0, "bogus": 1.0}}, "bogus"),
    ({"bad_record_share": 0.9}, "bad_record_share"),
    ({"death_share": 0.3, "transfer_share": 0.3}, "non-routine"),
])
def test_an_invalid_spec_is_refused_with_the_parameter_named(bad, message):
    with pytest.raises(SpecError, match=message):
        GeneratorSpec.parse(**bad)


def test_defect_weights_not_given_are_zero():
    spec = GeneratorSpec(defect_weights={"negative_cost": 2.0})
    assert spec.defect_weights["negative_cost"] == 2.0 and spec.defect_weights["wrong_type"] == 0.0


def test_the_province_has_yunnans_sixteen_prefectures(province):
    assert len(province.regions) == 16
    kunming = province.region("530100")
    assert kunming.name == "昆明市" and kunming.insured_persons > 1_000_000
    assert {r.drop_format for r in province.regions} == {"csv", "parquet"}
    assert province.region("533400").name == "迪庆藏族自治州"
    assert province.inflation[province.reference_year] == 1.0


def test_an_unknown_key_in_the_province_file_names_the_file_and_the_key(tmp_path):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "conf" / "province.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "province.yaml"
    bad.write_text(text.replace("yearly_volume_growth:", "yearly_volume_growht:"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_province(bad)
    assert str(bad) in str(err.value) and "yearly_volume_growht" in str(err.value)


def test_mix64_is_splitmix64():
    # first output of splitmix64 seeded with 0 (reference implementation by Vigna)
    out = mix64(np.array([0x9E3779B97F4A7C15], dtype=np.uint64))
    assert int(out[0]) == 0xE220A8397B1DCDAF


def test_draws_depend_on_the_key_only_not_on_the_batch_it_is_in():
    ids = np.arange(1000, dtype=np.int64)
    whole = Draws(7, ids).uniform("field")
    part = Draws(7, ids[300:400]).uniform("field")
    assert np.array_equal(whole[300:400], part)
    assert not np.array_equal(whole, Draws(8, ids).uniform("field"))
    assert not np.array_equal(whole, Draws(7, ids).uniform("other field"))
    assert 0 < whole.min() and whole.max() < 1
    z = Draws(7, np.arange(200_000)).normal("z")
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01


def test_chinese_numerals_read_like_a_clerk_would_type_an_age():
    assert [chinese_numeral(n) for n in (3, 10, 16, 30, 32, 100, 105, 118)] == [
        "三", "十", "十六", "三十", "三十二", "一百", "一百零五", "一百一十八"]
