"""DRG grouping core of casemix (pure numpy/pandas/pyarrow; no Spark, no Java).

Typical use::

    from casemix.grouping import load_compiled, group_frame
    compiled = load_compiled("/work/shared/schemes/chs-drg-1.1")   # memoised + disk cache
    result = group_frame(compiled, frame)                           # same index as ``frame``
    table = group_arrow(compiled, arrow_table_or_batch)             # the same, Arrow in and out

``load_scheme`` gives the validated, typed scheme; ``group_record`` is the simple
per-record reference implementation (slow; for checks).  See ``core.TRACE_FORMAT`` for
the trace column and ``core.INVALID_REASONS`` for input validation.
"""
from .compile import CODE_VERSION, CompiledScheme, compile_scheme, default_cache_dir, load_compiled, read_compiled, \
    save_compiled
from .core import (INPUT_COLUMNS, INVALID_REASONS, OUTPUT_COLUMNS, REQUIRED_INPUT_COLUMNS, SEX_VALUES, STATUS_GROUPED,
                   STATUS_INVALID, STATUS_QY, STATUS_UNGROUPABLE, STATUSES, TRACE_FORMAT, group_arrow, group_frame)
from .reference import group_record
from .scheme import RULE_TERMS, SPLIT_PREDICATES, Scheme, SchemeError, load_scheme, scheme_content_hash

__all__ = [
    "load_scheme",
    "load_compiled",
    "compile_scheme",
    "save_compiled",
    "read_compiled",
    "default_cache_dir",
    "group_frame",
    "group_arrow",
    "group_record",
    "Scheme",
    "CompiledScheme",
    "SchemeError",
    "scheme_content_hash",
    "CODE_VERSION",
    "RULE_TERMS",
    "SPLIT_PREDICATES",
    "STATUS_GROUPED",
    "STATUS_QY",
    "STATUS_UNGROUPABLE",
    "STATUS_INVALID",
    "STATUSES",
    "INPUT_COLUMNS",
    "REQUIRED_INPUT_COLUMNS",
    "OUTPUT_COLUMNS",
    "INVALID_REASONS",
    "SEX_VALUES",
    "TRACE_FORMAT",
]
