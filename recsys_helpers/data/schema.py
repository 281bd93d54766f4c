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


def parse_int_ids(values: pd.Series, column: str, source: str) -> np.ndarray:
    """Parse an id column to int64, naming the first bad row (1-based data row) if any."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna().to_numpy() | (np.asarray(numeric.fillna(0)) % 1 != 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: column '{column}' has a value that is not an integer id at data row "
            f"{row + 1}: {values.iloc[row]!r}. Fix or remove that row."
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
            f"{values.iloc[row]!r}; expected {how}."
        )
    return parsed.to_numpy().astype("datetime64[ms]")


def check_time_range(times: np.ndarray, source: str) -> None:
    """Refuse times that all fall outside 1990-2100 (a wrong unit: epoch seconds read as
    milliseconds put every event in January 1970); warn, naming the count and the first data row,
    when only some do."""
    outside = (times < PLAUSIBLE_TIMES[0]) | (times >= PLAUSIBLE_TIMES[1])
    if not outside.any():
        return
    row = int(np.flatnonzero(outside)[0])
    span = f"{times.min().astype('datetime64[s]')} .. {times.max().astype('datetime64[s]')}"
    fix = (
        "Check the time unit: RetailRocket's events.csv holds epoch milliseconds, so a file converted "
        "with epoch seconds must be multiplied by 1000; for load_dataset('events', ...) pass "
        "timestamp_unit='s' or 'ms' to match the numbers."
    )
    if outside.all():
        raise DataError(f"{source}: every timestamp falls outside 1990-2100 ({span}). {fix}")
    warnings.warn(
        f"{source}: {int(outside.sum()):,} of {len(times):,} timestamps fall outside 1990-2100 (first at "
        f"data row {row + 1}: {times[row]}); they are kept. {fix}",
        stacklevel=3,
    )


def finalize_events(
    frame: pd.DataFrame,
    *,
    explicit_events: Iterable[str],
    implicit_events: Iterable[str],
    source: str,
) -> pd.DataFrame:
    """Validate a parsed frame and return it in canonical form.

    `frame` must already hold user_id/item_id (int64), timestamp (datetime64) and event
    (str). Unknown event names, empty data and missing columns raise a DataError. Exact
    duplicate rows are kept, counted, and reported in `attrs["load_report"]`.
    """
    require_columns(frame, ["user_id", "item_id", "timestamp", "event"], source)
    if len(frame) == 0:
        raise DataError(f"{source}: no events found. Check that the file is the right one and not empty.")
    check_time_range(frame["timestamp"].to_numpy().astype("datetime64[ms]"), source)
    explicit_events, implicit_events = list(explicit_events), list(implicit_events)
    known = explicit_events + implicit_events
    event = frame["event"].astype(str)
    unknown = ~event.isin(known)
    if unknown.any():
        counts = event[unknown].value_counts()
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(
            f"{source}: unknown event name(s) {dict(counts)} (first at data row {row + 1}); "
            f"known: implicit {implicit_events}, explicit {explicit_events}. "
            "Map them, or declare them as implicit/explicit events."
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
