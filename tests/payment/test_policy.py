"""Payment parameters: read per year and region from the policy file, validated when it is loaded."""
from __future__ import annotations

from decimal import Decimal

import pytest
import yaml

from casemix.config import ConfigError
from casemix.policy import PolicyError, load_policy
from tests.conftest import ROOT


def write(tmp_path, mutate):
    doc = yaml.safe_load((ROOT / "conf" / "policy" / "default.yaml").read_text(encoding="utf-8"))
    mutate(doc["payment"]["years"][2025])
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_the_shipped_policy_has_2025_with_chuxiong_on_the_rate_method():
    policy = load_policy(ROOT / "conf" / "policy" / "default.yaml")
    kunming, chuxiong = policy.payment.params(2025, "530100"), policy.payment.params(2025, "532300")
    assert (kunming.method, chuxiong.method) == ("point", "rate")
    assert kunming.coefficient.grades["二级"] == Decimal("0.9") and kunming.readmission.window_days == 15
    assert chuxiong.band == kunming.band                     # overrides touch only the keys they name
    with pytest.raises(PolicyError, match="payment.years.2031"):
        policy.payment.params(2031, "530100")


def test_a_misspelt_key_in_a_region_override_fails_when_the_file_is_loaded(tmp_path):
    path = write(tmp_path, lambda y: y["regions"].update({"530100": {"readmision": {"window_days": 10}}}))
    with pytest.raises(ConfigError, match=r"payment.years.2025 \(region 530100\).*readmision"):
        load_policy(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda y: y["band"].update({"upper_ratio": 0.3}), "band.upper_ratio must be above low_cost_ratio"),
    (lambda y: y.update({"high_cost": [{"up_to_points": 100, "multiple": 3}]}), "last tier"),
    (lambda y: y["budget"].update({"monthly_shares": [0.5, 0.5]}), "monthly_shares"),
    (lambda y: y["budget"].update({"basis": "fixed"}), "needs budget.amount"),
    (lambda y: y["rate"]["benefits"].pop("一级"), "lacks grade"),
    (lambda y: y["coefficient"].update({"history_bounds": [1.2, 0.8]}), "history_bounds"),
])
def test_invalid_payment_parameters_are_refused_with_the_key(tmp_path, mutate, message):
    with pytest.raises(ConfigError, match=message):
        load_policy(write(tmp_path, mutate))
