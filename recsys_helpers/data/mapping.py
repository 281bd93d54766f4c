"""Your own shop's log, described once in a small TOML file and loaded by name.

A mapping file holds the arguments of `loaders.load_events` (and the file's path, relative to the
mapping file). For Taobao's public UserBehavior log (https://tianchi.aliyun.com/dataset/649), a
header-less CSV of `user_id,item_id,category_id,behavior_type,timestamp` with epoch seconds:

    path = "UserBehavior.csv"
    names = ["user_id", "item_id", "category_id", "behavior_type", "timestamp"]  # no header line
    timestamp_unit = "s"              # "s", "ms" (epoch numbers) or "iso" (ISO 8601 date-time text)
    implicit_events = ["pv"]          # page views
    explicit_events = ["cart", "buy"]
    ignored_events = ["fav"]          # or list "fav" as implicit: the shop's choice

    [columns]                         # canonical name = the file's column
    user_id = "user_id"
    item_id = "item_id"
    timestamp = "timestamp"
    event = "behavior_type"
    category_id = "category_id"       # optional

ISO text with a zone ("2019-10-01 00:00:00 UTC", "+02:00") is converted to UTC; text without one is
read in `timezone = "Europe/Berlin"` (an IANA name; default UTC, the only key without a flag).

Then `load_dataset("events", "taobao.toml")`, the notebooks with `-p DATASET events -p DATA_DIR
taobao.toml`, or `python -m recsys_helpers experiment --dataset events --mapping taobao.toml ...`
(command-line flags override single entries). Sessions are not read from the log: every dataset
gets the same 30-minute-gap sessions (`preprocess`). Every message about a bad entry names the key
and its flag, so it reads the same whichever way the entry was given.
"""

from __future__ import annotations

import difflib
import tomllib
import zoneinfo
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from .schema import DataError

FLAGS = {  # mapping key -> the command-line flag that sets it (`timezone` has none)
    "path": "--events",
    "columns": "--columns",
    "names": "--names",
    "timestamp_unit": "--time-unit",
    "implicit_events": "--implicit",
    "explicit_events": "--explicit",
    "ignored_events": "--ignore",
}
KEYS = (*FLAGS, "timezone")
REQUIRED_KEYS = ("path", "columns", "implicit_events", "explicit_events")
LIST_KEYS = ("names", "implicit_events", "explicit_events", "ignored_events")
COLUMN_KEYS = ("user_id", "item_id", "timestamp", "event", "category_id")  # the last one optional
TIME_UNITS = {"s": "s", "ms": "ms", "iso": None}
TIME_UNIT_CHOICES = "s (epoch seconds), ms (epoch milliseconds) or iso (ISO 8601 date-time text)"
README = "the README section 'Your own shop: --dataset events'"


def read_mapping(path: str | Path) -> dict:
    """A mapping file -> the keyword arguments of `load_events` (path resolved next to the file)."""
    return events_options(mapping_file(path), str(path))


def mapping_file(path: str | Path) -> dict:
    """The entries of a mapping file as written (its `path` resolved next to the file), unchecked."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: write your shop's mapping as a TOML file (see {README}).")
    try:
        mapping = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise DataError(f"{path}: not valid TOML ({error}). Fix that line.") from None
    if "path" in mapping:
        if not isinstance(mapping["path"], str):
            raise DataError(
                f'{path}: path must be the events file as text, like path = "events.csv" (--events).'
            )
        mapping["path"] = path.parent / mapping["path"]
    return mapping


def events_options(mapping: dict, source: str = "the events mapping") -> dict:
    """Check a mapping {path, columns, names, timestamp_unit, explicit_events, ...} and return it
    as `load_events` arguments (timestamp_unit "iso" -> None); a bad key or value names the fix."""
    unknown = [key for key in mapping if key not in KEYS]
    if unknown:
        raise DataError(
            f"{source}: {_unknown_keys(unknown, _KEY_SPELLINGS)} "
            f"The keys are {', '.join(KEYS)} (see {README})."
        )
    missing = [key for key in REQUIRED_KEYS if key not in mapping]
    if missing:
        raise DataError(
            f"{source}: {' and '.join(setting(key) for key in missing)} missing; a mapping needs "
            f"{', '.join(setting(key) for key in REQUIRED_KEYS)}."
        )
    options = dict(mapping)
    unit = options.pop("timestamp_unit", "iso")
    if not isinstance(unit, str) or unit not in TIME_UNITS:
        raise DataError(
            f"{source}: timestamp_unit {unit!r} is not one of {TIME_UNIT_CHOICES}; "
            f"set {setting('timestamp_unit')} to one of them."
        )
    options["timestamp_unit"] = TIME_UNITS[unit]
    columns = options["columns"]
    misplaced = [key for key in columns if key in KEYS] if isinstance(columns, dict) else []
    if misplaced:
        raise DataError(
            f"{source}: {misplaced[0]} is inside [columns], as a key written below a table belongs to it; "
            "move it above [columns]."
        )
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise DataError(
            f"{source}: columns must map canonical names to the file's columns, like [columns] user_id = "
            "'uid' (--columns user_id=uid,...)."
        )
    for key in LIST_KEYS:
        value = options.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DataError(
                f"{source}: {key} must be a list of names like ['cart', 'buy'] ({FLAGS[key]} cart,buy), "
                f"not {value!r}."
            )
    if not isinstance(options.get("timezone", ""), str):
        raise DataError(
            f"{source}: timezone must be a zone name like 'Europe/Berlin', not {options['timezone']!r}."
        )
    check_arguments(
        source,
        columns=columns,
        names=options.get("names"),
        implicit_events=options["implicit_events"],
        explicit_events=options["explicit_events"],
        ignored_events=options.get("ignored_events", []),
        timezone=options.get("timezone"),
    )
    return options


def check_arguments(
    source: str,
    *,
    columns: Mapping[str, str],
    names: list[str] | None,
    implicit_events: list[str],
    explicit_events: list[str],
    ignored_events: list[str],
    timezone: str | None,
) -> None:
    """Refuse what no file can make right: a column mapping without user_id, item_id, timestamp or
    event, two canonical names on one column, a name twice in `names`, an event name listed twice,
    no explicit event, an unknown time zone."""
    unknown = [key for key in columns if key not in COLUMN_KEYS]
    if unknown:
        raise DataError(
            f"{source}: [columns] (--columns) has an {_unknown_keys(unknown, _COLUMN_SPELLINGS)} "
            f"{_MAP_COLUMNS}."
        )
    missing = [key for key in COLUMN_KEYS[:4] if key not in columns]
    if missing:
        raise DataError(
            f"{source}: [columns] (--columns) does not map {' and '.join(missing)}. {_MAP_COLUMNS}, like "
            f"[columns] {missing[0]} = 'COLUMN' (--columns ...,{missing[0]}=COLUMN)."
        )
    for column, count in Counter(columns.values()).items():
        if count > 1:
            keys = [key for key, value in columns.items() if value == column]
            raise DataError(
                f"{source}: [columns] (--columns) maps {' and '.join(keys)} to the same column {column!r}; "
                "each needs a column of its own."
            )
    for name, count in Counter(names or []).items():
        if count > 1:
            raise DataError(
                f"{source}: {setting('names')} lists {name!r} {count} times; give each column of the file a "
                "name of its own."
            )
    lists = {
        "implicit_events": implicit_events,
        "explicit_events": explicit_events,
        "ignored_events": ignored_events,
    }
    places: dict[str, list[str]] = {}
    for key, events in lists.items():
        for event in events:
            places.setdefault(event, []).append(key)
    for event, keys in places.items():
        if len(keys) > 1:
            where = " and ".join(setting(key) for key in dict.fromkeys(keys))
            listed = f"twice in {where}" if len(set(keys)) == 1 else f"in both {where}"
            raise DataError(
                f"{source}: the event name {event!r} is listed {listed}; keep it once, in one list."
            )
    if not explicit_events:
        raise DataError(
            f"{source}: {setting('explicit_events')} is empty; name the events that are explicit feedback "
            "(a cart, a purchase): the protocol draws its targets from them. Like explicit_events = ['buy'] "
            "(--explicit buy)."
        )
    if timezone is not None:
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise DataError(
                f"{source}: timezone {timezone!r} is not a time zone name; use an IANA name like "
                "'Europe/Berlin', 'America/New_York' or 'UTC' (the default)."
            ) from None


def setting(key: str, value: str | list[str] | None = None) -> str:
    """How a user sets `key`, in the mapping file and on the command line: "timestamp_unit
    (--time-unit)", or with a value "timestamp_unit = 's' (--time-unit s)"."""
    flag = FLAGS.get(key)
    if value is None:
        return f"{key} ({flag})" if flag else key
    given = ",".join(value) if isinstance(value, list) else value
    return f"{key} = {value!r}" + (f" ({flag} {given})" if flag else "")


_KEY_SPELLINGS = {key: key for key in KEYS} | {  # what a user may write for a key: a flag's name
    flag.removeprefix("--").replace("-", "_"): key for key, flag in FLAGS.items()
}
_COLUMN_SPELLINGS = {key: key for key in COLUMN_KEYS}
_MAP_COLUMNS = "Map user_id, item_id, timestamp and event (and optionally category_id) to the file's columns"


def _unknown_keys(unknown: list[str], spellings: dict[str, str]) -> str:
    """One sentence per key: "unknown key 'implicit_event': did you mean implicit_events (--implicit)?"."""
    phrases = []
    for key in unknown:
        close = difflib.get_close_matches(key.lower(), spellings, n=1)
        fix = f"did you mean {setting(spellings[close[0]])}?" if close else "remove it."
        phrases.append(f"unknown key {key!r}: {fix}")
    return " ".join(phrases)
