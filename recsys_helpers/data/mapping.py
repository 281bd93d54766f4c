"""Your own shop's log, described once in a small TOML file and loaded by name.

A mapping file holds the arguments of `loaders.load_events` (and the file's path, relative to the
mapping file). For Taobao's public UserBehavior log (https://tianchi.aliyun.com/dataset/649), a
header-less CSV of `user_id,item_id,category_id,behavior_type,timestamp` with epoch seconds:

    path = "UserBehavior.csv"
    names = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]  # no header line
    timestamp_unit = "s"              # "s", "ms" (epoch numbers) or "iso" (date-time text)
    implicit_events = ["pv"]          # page views
    explicit_events = ["cart", "buy"]
    ignored_events = ["fav"]          # or list "fav" as implicit: the shop's choice

    [columns]                         # canonical name = the file's column
    user_id = "user_id"
    item_id = "item_id"
    timestamp = "timestamp"
    event = "behavior_type"
    category_id = "category_id"       # optional

Then `load_dataset("events", "taobao.toml")`, the notebooks with `-p DATASET events -p DATA_DIR
taobao.toml`, or `python -m recsys_helpers experiment --dataset events --mapping taobao.toml ...`
(command-line flags override single entries). Sessions are not read from the log: every dataset
gets the same 30-minute-gap sessions (`preprocess`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from .schema import DataError

KEYS = ("path", "columns", "names", "timestamp_unit", "explicit_events", "implicit_events", "ignored_events")
TIME_UNITS = {"s": "s", "ms": "ms", "iso": None}


def read_mapping(path: str | Path) -> dict:
    """A mapping file -> the keyword arguments of `load_events` (path resolved next to the file)."""
    return events_options(mapping_file(path), str(path))


def mapping_file(path: str | Path) -> dict:
    """The entries of a mapping file as written (its `path` resolved next to the file), unchecked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: write your shop's mapping as a TOML file (see recsys_helpers.data.mapping)."
        )
    try:
        mapping = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise DataError(f"{path}: not valid TOML ({error}). Fix that line.") from None
    if "path" in mapping:
        mapping["path"] = path.parent / mapping["path"]
    return mapping


def events_options(mapping: dict, source: str = "the events mapping") -> dict:
    """Check a mapping {path, columns, names, timestamp_unit, explicit_events, ...} and return it
    as `load_events` arguments (timestamp_unit "iso" -> None); a bad key or value names the fix."""
    unknown = sorted(set(mapping) - set(KEYS))
    if unknown:
        raise DataError(f"{source}: unknown key(s) {unknown}; a mapping has {list(KEYS)}.")
    missing = [key for key in ("path", "columns", "explicit_events", "implicit_events") if key not in mapping]
    if missing:
        raise DataError(f"{source}: missing {missing}; a mapping needs path, columns and the event names.")
    options = dict(mapping)
    unit = options.pop("timestamp_unit", "iso")
    if unit not in TIME_UNITS:
        raise DataError(
            f"{source}: timestamp_unit {unit!r} is not one of {list(TIME_UNITS)} "
            "(epoch seconds, epoch milliseconds, date-time text)."
        )
    options["timestamp_unit"] = TIME_UNITS[unit]
    if not isinstance(options["columns"], dict):
        raise DataError(f"{source}: columns must map canonical names to the file's columns: user_id = 'uid'.")
    for key in ("names", "explicit_events", "implicit_events", "ignored_events"):
        value = options.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DataError(f"{source}: {key} must be a list of names like ['cart', 'buy'], not {value!r}.")
    return options
