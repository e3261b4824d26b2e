"""CSV files people open in a spreadsheet (predictions, errors): user text in them is neutralised,
the JSON beside them stays exact.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage
return before one) as a formula, so a transcript line such as ``=HYPERLINK(...)`` would run when
``predictions.csv`` is opened (CSV injection). In these files such a text cell is written with a
leading ``'`` (what spreadsheets themselves do to show a formula as text); number columns are left
alone. The manifest is not one of them: it is data the stages read, written exactly as the corpus
holds it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralised(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every text cell that a spreadsheet would run prefixed with ``'``."""
    out = table.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_string_dtype(values) or pd.api.types.is_object_dtype(values):
            out[column] = values.map(lambda v: f"'{v}" if isinstance(v, str) and v.startswith(FORMULA_START)
                                     else v)
    return out


def write_csv(path: Path, table: pd.DataFrame, float_format: str | None = None) -> Path:
    """``table`` as a spreadsheet-safe UTF-8 CSV at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    neutralised(table).to_csv(path, index=False, encoding="utf-8", float_format=float_format)
    return path
