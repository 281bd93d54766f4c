"""The canonical event frame every loader returns, and its one validation gate.

One row per event, sorted by (user, time), file order kept for ties:

    user_id: int64   item_id: int64   timestamp: datetime64[ms]
    event: category  explicit: bool   [category_id: Int64, top_category_id: Int64]

Loaders only rename and parse columns; `finalize_events` checks what they produce, so every
dataset (real, generic or synthetic) passes the same gate.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

CANONICAL_COLUMNS = ["user_id", "item_id", "timestamp", "event", "explicit"]
# Event logs of online shops fall in this window; times outside it mean a wrong time unit.
PLAUSIBLE_TIMES = (np.datetime64("1990-01-01", "ms"), np.datetime64("2100-01-01", "ms"))
OPTIONAL_COLUMNS = ["category_id", "top_category_id"]
TIME_UNIT_FIX = (
    "Check the time unit: RetailRocket's events.csv holds epoch milliseconds, so a file converted "
    "with epoch seconds must be multiplied by 1000."
)


class DataError(ValueError):
    """Bad input data: the message names the file, the row or column, and the fix."""


def require_columns(frame: pd.DataFrame, required: Iterable[str], source: str) -> None:
    """Raise a DataError naming every missing column and the columns that are there."""
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; found {list(frame.columns)}. "
            "Check the file's header (or the column mapping you passed)."
        )


def shown(value: object) -> str:
    """A file's value as its user wrote it, for messages: 'x9', 2.5, '' for a missing one; never
    NumPy's or pandas' repr (np.float64(2.5), Timestamp(...))."""
    if isinstance(value, str):
        return repr(value)
    if pd.isna(value):
        return "''"
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value) if isinstance(value, int | float) else repr(str(value))


def name_counts(names: pd.Series, rows: np.ndarray) -> str:
    """Each distinct name with its count and first data row, in order of first appearance:
    "'fav' (2,356 rows, first at data row 65), 'x' (1 row, ...)". rows: the 0-based data row of
    each value."""
    codes, uniques = pd.factorize(names, use_na_sentinel=False)
    counts = np.bincount(codes)
    _, first = np.unique(codes, return_index=True)
    return ", ".join(
        f"{shown(name)} ({n:,} row{'s' if n > 1 else ''}, first at data row {rows[i] + 1})"
        for name, n, i in zip(uniques, counts, first, strict=True)
    )


def parse_int_ids(values: pd.Series, column: str, source: str) -> np.ndarray:
    """Parse an id column to int64, naming the first bad row (1-based data row) if any.

    values: indexed by 0-based data row (a file's RangeIndex, or its subset)."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna().to_numpy() | (np.asarray(numeric.fillna(0)) % 1 != 0)
    if bad.any():
        row = np.flatnonzero(bad)[0]
        raise DataError(
            f"{source}: column '{column}' has a value that is not an integer id at data row "
            f"{values.index[row] + 1}: {shown(values.iloc[row])}. Fix or remove that row."
        )
    return numeric.to_numpy(dtype=np.int64)


def parse_timestamps(values: pd.Series, column: str, source: str, unit: str | None = None) -> np.ndarray:
    """Parse epoch numbers (with `unit`, e.g. "ms") or date strings to datetime64[ms]."""
    if unit is not None:
        numeric = pd.to_numeric(values, errors="coerce")
        parsed = pd.to_datetime(numeric, unit=unit, errors="coerce")
    else:
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        how = f"a number of {unit} since 1970" if unit else "a date-time such as 2016-09-29 10:59:21"
        raise DataError(
            f"{source}: column '{column}' has an unparsable timestamp at data row {row + 1}: "
            f"{shown(values.iloc[row])}; expected {how}."
        )
    return parsed.to_numpy().astype("datetime64[ms]")


def check_time_range(
    times: np.ndarray, source: str, fix: str = TIME_UNIT_FIX, rows: np.ndarray | None = None
) -> None:
    """Refuse times that all fall outside 1990-2100 (a wrong unit: epoch seconds read as
    milliseconds put every event in January 1970); warn, naming the count and the first data row,
    when only some do. fix: what to check; rows: the 0-based data row of each time (default: its
    position)."""
    outside = (times < PLAUSIBLE_TIMES[0]) | (times >= PLAUSIBLE_TIMES[1])
    if not outside.any():
        return
    first = int(np.flatnonzero(outside)[0])
    row = int(rows[first]) if rows is not None else first
    span = f"{times.min().astype('datetime64[s]')} .. {times.max().astype('datetime64[s]')}"
    if outside.all():
        raise DataError(f"{source}: every timestamp falls outside 1990-2100 ({span}). {fix}")
    warnings.warn(
        f"{source}: {int(outside.sum()):,} of {len(times):,} timestamps fall outside 1990-2100 (first at "
        f"data row {row + 1}: {times[first].astype('datetime64[s]')}); they are kept. {fix}",
        stacklevel=3,
    )


def finalize_events(
    frame: pd.DataFrame,
    *,
    explicit_events: Iterable[str],
    implicit_events: Iterable[str],
    source: str,
    rows: np.ndarray | None = None,
    time_fix: str = TIME_UNIT_FIX,
) -> pd.DataFrame:
    """Validate a parsed frame and return it in canonical form.

    `frame` must already hold user_id/item_id (int64), timestamp (datetime64) and event
    (str). Unknown event names, empty data and missing columns raise a DataError. Exact
    duplicate rows are kept, counted, and reported in `attrs["load_report"]`. rows: the 0-based
    data row of each frame row, for messages (default: its position); time_fix: what a message
    about implausible times tells the user to check.
    """
    require_columns(frame, ["user_id", "item_id", "timestamp", "event"], source)
    if len(frame) == 0:
        raise DataError(f"{source}: no events found. Check that the file is the right one and not empty.")
    rows = np.arange(len(frame)) if rows is None else rows
    check_time_range(frame["timestamp"].to_numpy().astype("datetime64[ms]"), source, time_fix, rows)
    explicit_events, implicit_events = list(explicit_events), list(implicit_events)
    known = explicit_events + implicit_events
    event = frame["event"].astype(str)
    unknown = (~event.isin(known)).to_numpy()
    if unknown.any():
        raise DataError(
            f"{source}: unknown event name(s) {name_counts(event[unknown], rows[unknown])}; "
            f"known: implicit {implicit_events}, explicit {explicit_events}."
        )
    out = pd.DataFrame(
        {
            "user_id": frame["user_id"].to_numpy(dtype=np.int64),
            "item_id": frame["item_id"].to_numpy(dtype=np.int64),
            "timestamp": frame["timestamp"].to_numpy().astype("datetime64[ms]"),
            "event": pd.Categorical(event, categories=known),
            "explicit": event.isin(explicit_events).to_numpy(),
        }
    )
    for column in OPTIONAL_COLUMNS:
        if column in frame.columns:
            out[column] = pd.array(frame[column], dtype="Int64")
    out = out.sort_values(["user_id", "timestamp"], kind="stable", ignore_index=True)
    duplicates = int(out.duplicated().sum())
    out.attrs["load_report"] = {
        "source": source,
        "rows": len(out),
        "exact_duplicates": duplicates,
        "events": {name: int(n) for name, n in out["event"].value_counts(sort=False).items()},
    }
    return out
