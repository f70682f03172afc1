"""Ingestion's code rules (`check_codes`, the pandas UDF of validation) on one core, in process.

Batches of N records with codes drawn from the chs-drg-1.1 dictionary (principal diagnosis, 0-6
secondary diagnoses, 0-3 procedures; 10 % of the codes in lower case with spaces, 5 % full-width) go
through :func:`casemix.ingest.validate.check_codes`; the baseline is the per-code Python function
:func:`casemix.codes.normalise_code` over the same codes in a loop (what a per-record implementation
would at least do).

  python bench/bench_code_check.py --rows 100000
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "lib"))

from harness import best_of, machine, print_table  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import numpy as np
    import pandas as pd

    from casemix.codes import FULLWIDTH, HALFWIDTH, load_codebook, normalise_code
    from casemix.ingest.validate import check_codes

    schemes = Path(os.environ.get("CASEMIX_SCHEMES_DIR", HERE.parent.parent / "shared" / "schemes"))
    book = load_codebook(schemes / "chs-drg-1.1")
    rng = np.random.default_rng(1)
    dx, px = np.array(sorted(book.diagnoses)), np.array(sorted(book.procedures))
    wide = str.maketrans(HALFWIDTH, FULLWIDTH)

    def quirk(code: str) -> str:
        u = rng.random()
        return f" {code.lower()} " if u < 0.10 else code.translate(wide) if u < 0.15 else code

    n = args.rows
    principal = pd.Series([quirk(c) for c in rng.choice(dx, n)])
    secondary = pd.Series(["|".join(quirk(c) for c in rng.choice(dx, k)) for k in rng.integers(0, 7, n)])
    procedures = pd.Series(["|".join(quirk(c) for c in rng.choice(px, k)) for k in rng.integers(0, 4, n)])
    sex = pd.Series(rng.choice(["1", "2"], n))
    age = pd.Series(rng.integers(0, 90, n))
    every_code = [c for s in (principal, secondary, procedures) for v in s for c in v.split("|") if c]

    base = best_of("baseline: normalise_code per code", n, lambda: [normalise_code(c) for c in every_code],
                   repeat=args.repeat, warmup=True)
    m = best_of("check_codes (vectorised)", n, lambda: check_codes(principal, secondary, procedures, sex, age, book),
                repeat=args.repeat, warmup=True)
    m.extra["codes"] = len(every_code)
    print(f"machine: {machine()}\n")
    print_table(f"Code rules of ingestion, {n:,} records", [base, m], baseline=base.name)


if __name__ == "__main__":
    main()
