"""The same seed and spec give the same records whatever the number of partitions."""
from __future__ import annotations

import pandas as pd

from casemix.generate import GeneratorSpec, build_plan, generate_inpatient, generate_outpatient


def _sorted(df) -> pd.DataFrame:
    pdf = df.toPandas()
    return pdf.sort_values(list(pdf.columns)).reset_index(drop=True)


def test_two_and_five_partitions_give_identical_records_and_another_seed_does_not(spark, province, schemes_dir):
    base = dict(seed=99, n_cases=2500, bad_record_share=0.04, outpatient_multiple=0.4)
    two = build_plan(GeneratorSpec(partitions=2, **base), province, schemes_dir)
    five = build_plan(GeneratorSpec(partitions=5, **base), province, schemes_dir)
    a, b = _sorted(generate_inpatient(spark, two)), _sorted(generate_inpatient(spark, five))
    assert len(a) >= 2500
    pd.testing.assert_frame_equal(a, b)
    va, vb = _sorted(generate_outpatient(spark, two)), _sorted(generate_outpatient(spark, five))
    assert len(va) == 1000
    pd.testing.assert_frame_equal(va, vb)

    other = build_plan(GeneratorSpec(partitions=2, **{**base, "seed": 100}), province, schemes_dir)
    c = _sorted(generate_inpatient(spark, other))
    same_ids = a.merge(c, on=["case_id", "row_role"], suffixes=("", "_other"))
    assert (same_ids["人员编号"] != same_ids["人员编号_other"]).mean() > 0.99
    assert (same_ids["总费用"] != same_ids["总费用_other"]).mean() > 0.99


def test_the_catalogue_is_the_same_in_another_process_with_another_string_hash_seed(plan, province, schemes_dir):
    import os
    import subprocess
    import sys

    code = ("from casemix.generate import GeneratorSpec, build_plan, load_province; import sys; "
            "p = build_plan(GeneratorSpec(seed=int(sys.argv[1]), n_cases=10), load_province(sys.argv[2]), sys.argv[3]); "
            "print(p.catalogue.fingerprint())")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    done = subprocess.run([sys.executable, "-c", code, str(plan.spec.seed), province.source_file, str(schemes_dir)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == plan.catalogue.fingerprint()
