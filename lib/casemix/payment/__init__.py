"""DRG payment: case points, settlement (point method, rate method), simulation against fee-for-service.

Data flow: ``grouped_claims`` + promoted ``relative_weights`` + ``hospitals`` → :func:`score_year`
(:mod:`.scoring`) → ``case_points`` → :func:`settle_year` (:mod:`.rate`, :mod:`.settlement`) →
``hospital_settlements``, ``point_values``, ``payment_simulation`` + an HTML report (:mod:`.report`) and
an MLflow run in experiment ``settlement``. Parameters: ``payment.years.<year>`` of conf/policy.
Formulas: the docstrings of :mod:`.scoring` (case types), :mod:`.settlement` (point values, surplus,
provisional payments, reconciliation), :mod:`.rate` (rate method) and :mod:`.money` (rounding).
"""
from casemix.payment.hospitals import RegisterError, read_deductions, read_register, write_register
from casemix.payment.money import allocate, to_fen
from casemix.payment.rate import base_rates, rate_cases
from casemix.payment.scoring import CASE_TYPES, score_cases
from casemix.payment.settlement import (HospitalMonth, ReconciliationError, RegionSettlement, SettlementError,
                                        check_region, settle_region)
from casemix.payment.workflow import (SETTLEMENT_EXPERIMENT, PaymentError, budgets, score_year, settle_year,
                                      write_settlement)

__all__ = ["RegisterError", "read_deductions", "read_register", "write_register", "allocate", "to_fen", "base_rates", "rate_cases",
           "CASE_TYPES", "score_cases", "HospitalMonth", "ReconciliationError", "RegionSettlement",
           "SettlementError", "check_region", "settle_region", "SETTLEMENT_EXPERIMENT", "PaymentError", "budgets",
           "score_year", "settle_year", "write_settlement"]
