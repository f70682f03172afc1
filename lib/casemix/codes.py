"""Code dictionaries and code-level plausibility sets derived from a grouping scheme folder.

Used by ingestion (to normalise and validate codes) and by the generator (to draw codes that pass).

- ``normalise_code``: the source-format quirks hospitals send (lower case, full-width characters,
  spaces) removed: full-width ASCII folded to ASCII, whitespace dropped, letters upper-cased except
  ``x``, which the national dictionaries write in lower case everywhere but as a code's first
  character (``R54.x00x002``, ``71.4x02``, but ``X47.900x098``).
- A diagnosis / procedure is *known* when it is in the scheme's vocabulary (``diagnoses.csv`` or
  ``procedures.csv`` plus every code the scheme's tables reference), directly or after the scheme's
  code-version map (``diagnosis_map.csv`` / ``procedure_map.csv``: an old-version code is translated once).
- Sex-specific diagnoses: principal-diagnosis list of MDCM (male reproductive system) minus the
  female lists, and of MDCN (female reproductive) ∪ MDCO (pregnancy, childbirth) minus the male list.
- Newborn diagnoses: MDCP (newborn) principal-diagnosis codes of ICD-10 chapter XVI (``P``:
  conditions originating in the perinatal period); implausible for an adult (age >= 18).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CodeBook", "load_codebook", "normalise_code", "FULLWIDTH", "HALFWIDTH", "HOSPITAL_GRADES",
           "HOSPITAL_TYPES", "INSURANCE_SCHEMES"]

#: hospital grades (等级), highest first: the register, the generator and payment policy use these values
HOSPITAL_GRADES = ("三级", "二级", "一级")
#: hospital types: general 综合, tcm 中医, specialty 专科
HOSPITAL_TYPES = ("general", "tcm", "specialty")
#: insurance schemes as stored after ingestion: employee 职工, resident 居民
INSURANCE_SCHEMES = ("employee", "resident")

#: full-width ASCII (U+FF01..U+FF5E) and the ideographic space, and what they fold to
FULLWIDTH = "".join(chr(c) for c in range(0xFF01, 0xFF5F)) + "\u3000"
HALFWIDTH = "".join(chr(c) for c in range(0x21, 0x7F)) + " "
_FOLD = str.maketrans(FULLWIDTH, HALFWIDTH)


def normalise_code(code: str | None) -> str | None:
    """Fold width, drop whitespace, upper-case; ``x`` lower case except as the first character."""
    if code is None:
        return None
    folded = "".join(code.translate(_FOLD).split()).upper()
    return (folded[:1] + folded[1:].replace("X", "x")) or None


@dataclass(frozen=True)
class CodeBook:
    scheme_id: str
    diagnoses: frozenset[str]
    procedures: frozenset[str]
    diagnosis_map: dict[str, str]
    procedure_map: dict[str, str]
    male_only: frozenset[str]
    female_only: frozenset[str]
    newborn_only: frozenset[str]
    adult_age: int = 18

    def map_diagnosis(self, code: str) -> str | None:
        """The grouper's code for a (normalised) diagnosis code, or None when unknown."""
        if code in self.diagnoses:
            return code
        mapped = self.diagnosis_map.get(code)
        return mapped if mapped in self.diagnoses else None

    def map_procedure(self, code: str) -> str | None:
        if code in self.procedures:
            return code
        mapped = self.procedure_map.get(code)
        return mapped if mapped in self.procedures else None


@functools.lru_cache(maxsize=8)
def _load(path: str) -> CodeBook:
    from casemix.grouping import load_scheme

    scheme = load_scheme(path)
    zd = {m.mdc: set(m.lists.get("zd", ())) for m in scheme.mdcs}
    male = zd.get("MDCM", set())
    female = zd.get("MDCN", set()) | zd.get("MDCO", set())
    return CodeBook(
        scheme_id=scheme.scheme_id,
        diagnoses=frozenset(scheme.known_diagnosis_codes()),
        procedures=frozenset(scheme.known_procedure_codes()),
        diagnosis_map=dict(scheme.diagnosis_map),
        procedure_map=dict(scheme.procedure_map),
        male_only=frozenset(male - female),
        female_only=frozenset(female - male),
        newborn_only=frozenset(c for c in zd.get("MDCP", set()) if c.startswith("P")),
    )


def load_codebook(scheme_dir: str | os.PathLike) -> CodeBook:
    """The code book of one scheme folder (memoised per process, so once per executor)."""
    return _load(str(Path(scheme_dir).resolve()))
