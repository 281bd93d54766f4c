"""Readers for the raw dataset files (RetailRocket, Recobell, a shop of your own) -> the canonical frame.

Each reader only finds, renames and parses columns; `schema.finalize_events` then checks the result, so
every dataset passes the same gate. Clean files are parsed by pyarrow with explicit column types (a
RetailRocket-sized events.csv in seconds); only when that fails does a slower, forgiving pandas read run,
to name the bad row in the error. No row is ever dropped: exact duplicates are kept and counted.
"""

from __future__ import annotations

import csv
import gzip
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .mapping import TIME_UNIT_CHOICES, TIME_UNITS, check_arguments, setting
from .schema import (
    PLAUSIBLE_TIMES,
    DataError,
    finalize_events,
    name_counts,
    parse_int_ids,
    parse_timestamps,
    require_columns,
    shown,
)

RETAILROCKET_HELP = (
    "Download the Kaggle dataset retailrocket/ecommerce-dataset "
    "(`kaggle datasets download -d retailrocket/ecommerce-dataset`), unzip it and put events.csv "
    "(optionally item_properties_part*.csv and category_tree.csv) in {folder}; see data/README.md."
)
RECOBELL_HELP = (
    "Get the PAKDD 2017 Recobell release (site_view_log_small.csv000.gz, site_order_log_small.csv000.gz, "
    "site_product_w_img.csv000.gz) and put the csv000 files (gzipped or not) in {folder}; "
    "see data/README.md."
)

RETAILROCKET_COLUMNS = ["timestamp", "visitorid", "event", "itemid"]  # events.csv columns read
RETAILROCKET_EXPLICIT = ["addtocart", "transaction"]
PROPERTY_COLUMNS = ["timestamp", "itemid", "property", "value"]

# Recobell: header-less files, columns in this order; the first name found in the folder is read.
RECOBELL_VIEW_COLUMNS = ["server_time", "device", "session_id", "uid", "item_id"]
RECOBELL_ORDER_COLUMNS = [*RECOBELL_VIEW_COLUMNS, "order_id", "quantity"]
RECOBELL_CATEGORIES = ["category1", "category2", "category3", "category4"]
RECOBELL_PRODUCT_COLUMNS = ["item_id", "item_image", "price", *RECOBELL_CATEGORIES, "brand"]
RECOBELL_VIEW_FILES = ("site_view_log.csv000", "site_view_log_small.csv000")
RECOBELL_ORDER_FILES = ("site_order_log.csv000", "site_order_log_small.csv000")
RECOBELL_PRODUCT_FILES = ("site_product_w_img.csv000", "site_product.csv000")
RECOBELL_EVENTS = ["view", "order"]

UNIT_NAMES = {"s": "seconds", "ms": "milliseconds"}
# An ISO 8601 time (after "T" or a space) that ends in a zone: Z, +hh, +hhmm or +hh:mm.
ISO_ZONE = r"[T ]\d\d?(?::?\d\d){0,2}(?:[.,]\d+)? ?(?:[zZ]|[+-]\d\d(?::?\d\d)?)$"
MAX_HEX_DIGITS = 15  # 15 hex digits = 60 bits: always fits int64
_HEX_DIGITS = np.full(256, 255, dtype=np.uint8)  # byte -> its hex value, 255 for a non-hex byte
_HEX_DIGITS[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX_DIGITS[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX_DIGITS[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)


# --------------------------------------------------------------------------- RetailRocket
def load_retailrocket(data_dir: str | Path) -> pd.DataFrame:
    """The Kaggle RetailRocket folder as the canonical frame: views implicit, add-to-carts and
    transactions explicit.

    With item_properties*.csv present, `category_id` is each item's `categoryid` property at its
    latest timestamp (<NA> for items without one); with category_tree.csv too, `top_category_id` is
    the root of that category.
    """
    folder = Path(data_dir)
    path = folder / "events.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found. {RETAILROCKET_HELP.format(folder=folder)}")
    frame = _read_retailrocket_events(path)
    property_files = sorted(folder.glob("item_properties*.csv"))
    if property_files:
        items, categories = _latest_item_categories(property_files)
        frame["category_id"] = _lookup(items, categories, frame["item_id"])
        tree = folder / "category_tree.csv"
        if tree.is_file():
            nodes, roots = _category_roots(tree)
            frame["top_category_id"] = _lookup(nodes, roots, frame["category_id"])
    events = finalize_events(
        frame, explicit_events=RETAILROCKET_EXPLICIT, implicit_events=["view"], source=str(path)
    )
    return _report_categories(events)


def _read_retailrocket_events(path: Path) -> pd.DataFrame:
    """events.csv -> user_id, item_id, timestamp, event in file order (extra columns ignored)."""
    source = str(path)
    require_columns(pd.DataFrame(columns=_csv_header(path)), RETAILROCKET_COLUMNS, source)
    types = dict.fromkeys(["timestamp", "visitorid", "itemid"], pa.int64())
    types["event"] = pa.dictionary(pa.int32(), pa.string())
    options = pacsv.ConvertOptions(include_columns=RETAILROCKET_COLUMNS, column_types=types)
    try:
        table = pacsv.read_csv(path, convert_options=options)
    except pa.ArrowInvalid:
        table = None
    if table is None or any(table[c].null_count for c in ("timestamp", "visitorid", "itemid")):
        text = _read_text(path, header=True)
        return pd.DataFrame(
            {
                "timestamp": parse_timestamps(text["timestamp"], "timestamp", source, unit="ms"),
                "user_id": parse_int_ids(text["visitorid"], "visitorid", source),
                "item_id": parse_int_ids(text["itemid"], "itemid", source),
                "event": text["event"],
            }
        )
    return pd.DataFrame(
        {
            "timestamp": table["timestamp"].to_numpy().view("datetime64[ms]"),
            "user_id": table["visitorid"].to_numpy(),
            "item_id": table["itemid"].to_numpy(),
            "event": table["event"].to_pandas(),
        }
    )


def _latest_item_categories(paths: list[Path]) -> tuple[np.ndarray, pd.arrays.IntegerArray]:
    """(item ids, category ids): each item's `categoryid` property with the latest timestamp.

    Ties on the timestamp go to the row read last (files in name order, rows in file order).
    """
    rows = pd.concat([_category_properties(path) for path in paths], ignore_index=True)
    latest = rows.sort_values(["itemid", "timestamp"], kind="stable").drop_duplicates("itemid", keep="last")
    return latest["itemid"].to_numpy(np.int64), latest["category"].array


def _category_properties(path: Path) -> pd.DataFrame:
    """The `categoryid` rows of one item_properties file as itemid, timestamp, category (Int64).

    The file (millions of rows of all properties) is streamed in blocks and filtered as it is read;
    only the kept rows are parsed, so a bad value elsewhere does not matter.
    """
    source = str(path)
    require_columns(pd.DataFrame(columns=_csv_header(path)), PROPERTY_COLUMNS, source)
    options = pacsv.ConvertOptions(
        include_columns=PROPERTY_COLUMNS, column_types=dict.fromkeys(PROPERTY_COLUMNS, pa.string())
    )
    try:
        kept, rows, start = [], [], 0
        with pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=1 << 24), convert_options=options
        ) as reader:
            for batch in reader:
                keep = pc.equal(batch.column("property"), "categoryid")
                kept.append(batch.filter(keep))
                rows.append(np.flatnonzero(keep.to_numpy(zero_copy_only=False)) + start)
                start += batch.num_rows
            text = pa.Table.from_batches(kept, schema=reader.schema).to_pandas()
        row = np.concatenate([np.zeros(0, np.int64), *rows])
    except pa.ArrowInvalid:
        text = _read_text(path, header=True)
        row = np.flatnonzero((text["property"] == "categoryid").to_numpy())
        text = text.iloc[row]
    return pd.DataFrame(
        {
            "itemid": _parse_ints(text["itemid"], "itemid", source, rows=row),
            "timestamp": _parse_ints(text["timestamp"], "timestamp", source, rows=row),
            "category": _parse_ints(text["value"], "value (property categoryid)", source, rows=row),
        }
    )


def _category_roots(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(category ids, the root of each) from category_tree.csv, by vectorised pointer doubling.

    Roots have an empty parentid. A parent missing from the tree, a repeated category or a cycle
    raises a DataError naming the category and its row.
    """
    source = str(path)
    text = _read_text(path, header=True)
    require_columns(text, ["categoryid", "parentid"], source)
    category = parse_int_ids(text["categoryid"], "categoryid", source)
    parent = _parse_ints(text["parentid"], "parentid", source, optional=True)
    repeated = pd.Series(category).duplicated().to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise DataError(
            f"{source}: category {category[row]} is listed twice (again at data row {row + 1}); "
            "keep one row per categoryid."
        )
    is_root = np.asarray(parent.isna())
    up = np.arange(len(category))
    up[~is_root] = pd.Index(category).get_indexer(parent[~is_root].to_numpy(np.int64))
    if (up < 0).any():
        row = int(np.flatnonzero(up < 0)[0])
        raise DataError(
            f"{source}: column 'parentid' at data row {row + 1} names category {parent[row]}, which is "
            "not in the tree. Add that category or leave the parentid empty to make a root."
        )
    for _ in range(len(category).bit_length()):  # after k rounds up[i] is the 2**k-th ancestor
        up = up[up]
    cyclic = ~is_root[up]
    if cyclic.any():
        row = int(np.flatnonzero(cyclic)[0])
        raise DataError(
            f"{source}: category {category[row]} (data row {row + 1}) never reaches a root: its "
            "parentid chain forms a cycle. Fix the parentid values on that chain."
        )
    return category, category[up]


# --------------------------------------------------------------------------- Recobell
def load_recobell(data_dir: str | Path) -> pd.DataFrame:
    """The PAKDD'17 Recobell folder as the canonical frame: views implicit, orders explicit.

    One "order" event per order-log row, whatever its quantity. uid / item_id / category hex
    hashes become int64 by base-16 parsing (lossless, same id in every file). With the product file
    present, `category_id` is the finest non-empty of category4..category1 and `top_category_id`
    is category1.
    """
    folder = Path(data_dir)
    view_path = _find_recobell_file(folder, RECOBELL_VIEW_FILES)
    order_path = _find_recobell_file(folder, RECOBELL_ORDER_FILES)
    frame = pd.concat(
        [
            _read_recobell_log(view_path, RECOBELL_VIEW_COLUMNS, "view"),
            _read_recobell_log(order_path, RECOBELL_ORDER_COLUMNS, "order"),
        ],
        ignore_index=True,
    )
    product_path = _find_recobell_file(folder, RECOBELL_PRODUCT_FILES, required=False)
    if product_path is not None:
        items, finest, top = _recobell_categories(product_path)
        frame["category_id"] = _lookup(items, finest, frame["item_id"])
        frame["top_category_id"] = _lookup(items, top, frame["item_id"])
    events = finalize_events(
        frame, explicit_events=["order"], implicit_events=["view"], source=f"{view_path} + {order_path}"
    )
    return _report_categories(events)


def _find_recobell_file(folder: Path, names: tuple[str, ...], required: bool = True) -> Path | None:
    """The first of `names` (or its .gz) present in `folder`."""
    candidates = [folder / f"{name}{suffix}" for name in names for suffix in ("", ".gz")]
    for path in candidates:
        if path.is_file():
            return path
    if required:
        raise FileNotFoundError(
            f"{candidates[0]} not found (nor {', '.join(p.name for p in candidates[1:])} in {folder}). "
            f"{RECOBELL_HELP.format(folder=folder)}"
        )
    return None


def _read_recobell_log(path: Path, names: list[str], event: str) -> pd.DataFrame:
    """A view or order log -> user_id, item_id, timestamp, event (one event per row)."""
    source = str(path)
    table = _read_headerless(path, names, ["server_time", "uid", "item_id"])
    if table.num_rows == 0:
        raise DataError(f"{source}: no rows. Check that the file is the complete, decompressed log.")
    return pd.DataFrame(
        {
            "user_id": _hex_ids(table["uid"], "uid", source),
            "item_id": _hex_ids(table["item_id"], "item_id", source),
            "timestamp": _recobell_times(table["server_time"], source),
            "event": pd.Categorical.from_codes(
                np.full(table.num_rows, RECOBELL_EVENTS.index(event), np.int8), RECOBELL_EVENTS
            ),
        }
    )


def _recobell_times(values: pa.ChunkedArray, source: str) -> np.ndarray:
    """server_time text ("2016-09-29 10:59:21.694") -> datetime64[ms]; the schema parser names a bad row."""
    try:
        parsed = pc.cast(values, pa.timestamp("ms"))
        if parsed.null_count == 0:
            return parsed.to_numpy()
    except pa.ArrowInvalid:
        pass  # not plain ISO text somewhere: the forgiving parser below names the row or reads it
    return parse_timestamps(values.to_pandas(), "server_time", source)


def _recobell_categories(path: Path) -> tuple[np.ndarray, pd.arrays.IntegerArray, pd.arrays.IntegerArray]:
    """(item ids, finest category, category1) per product; the last row of a repeated item wins.

    Reads site_product_w_img.csv000 (8 columns) or the image-less site_product.csv000 (7 columns).
    """
    source = str(path)
    n_columns = _read_text(path, header=False, nrows=1).shape[1]
    if n_columns not in (7, 8):
        raise DataError(
            f"{source}: {n_columns} columns per row; expected 8 ({', '.join(RECOBELL_PRODUCT_COLUMNS)}) "
            "or 7 (the same without item_image). Check that this is the Recobell product file."
        )
    names = [c for c in RECOBELL_PRODUCT_COLUMNS if n_columns == 8 or c != "item_image"]
    table = _read_headerless(path, names, ["item_id", *RECOBELL_CATEGORIES])
    items = _hex_ids(table["item_id"], "item_id", source)
    levels = [pd.Series(_hex_ids(table[c], c, source, optional=True)) for c in RECOBELL_CATEGORIES]
    finest = levels[-1]
    for coarser in reversed(levels[:-1]):
        finest = finest.fillna(coarser)
    last = ~pd.Series(items).duplicated(keep="last").to_numpy()
    return items[last], finest.array[last], levels[0].array[last]


def _hex_ids(
    values: pa.ChunkedArray | pa.Array, column: str, source: str, optional: bool = False
) -> np.ndarray | pd.arrays.IntegerArray:
    """Hex text ids ("1dbe8cd") -> int64 (0x1dbe8cd), vectorised over the raw bytes of the column.

    Every byte goes through a 256-entry lookup table, each digit is shifted by 4 bits per place from
    the right, and np.add.reduceat sums each string. Empty strings are <NA> when `optional` (then an
    Int64 array is returned), else an error like any non-hex or over-15-digit value.
    """
    array = pc.fill_null(pc.cast(values, pa.large_string()), "")
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    offsets = np.frombuffer(array.buffers()[1], np.int64)[array.offset : array.offset + len(array) + 1]
    data = array.buffers()[2]
    base = offsets[0]
    chars = np.frombuffer(data, np.uint8)[base : offsets[-1]] if data is not None else np.zeros(0, np.uint8)
    starts, ends = offsets[:-1] - base, offsets[1:] - base
    lengths = ends - starts
    digits = _HEX_DIGITS[chars]
    invalid_before = np.concatenate([[0], np.cumsum(digits == 255)])  # non-hex bytes before each byte
    bad = (invalid_before[ends] > invalid_before[starts]) | (lengths > MAX_HEX_DIGITS)
    present = lengths > 0
    if not optional:
        bad |= ~present
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: column '{column}' at data row {row + 1} is {values[row].as_py()!r}, not a hex id "
            f"of 1 to {MAX_HEX_DIGITS} characters (0-9, a-f). Fix or remove that row."
        )
    place = np.repeat(ends, lengths) - 1 - np.arange(len(chars))  # digit's place from the right
    ids = np.zeros(len(array), np.int64)
    if present.any():
        ids[present] = np.add.reduceat(digits.astype(np.int64) << (4 * place), starts[present])
    return pd.arrays.IntegerArray(ids, ~present) if optional else ids


# --------------------------------------------------------------------------- a shop of your own
def load_events(
    path: str | Path,
    *,
    columns: Mapping[str, str],
    explicit_events: Iterable[str],
    implicit_events: Iterable[str],
    ignored_events: Iterable[str] = (),
    timestamp_unit: str | None = None,
    names: Iterable[str] | None = None,
    timezone: str | None = None,
) -> pd.DataFrame:
    """Your own shop's events file (.csv, .csv.gz or .parquet) as the canonical frame.

    columns: canonical name -> the file's column, for user_id, item_id, timestamp, event and optionally
    category_id. Integer ids are kept; text ids become the codes 0..n-1 of their sorted unique values,
    and `attrs["id_maps"][name]` holds those values (code i <-> id_maps[name][i]); integer ids with a
    few text values among them (under half the rows) are refused as typos. Timestamps are epoch
    numbers in `timestamp_unit` ("s" or "ms", counted from 1970-01-01 UTC) or, with "iso" or None,
    ISO 8601 date-time text: text with a zone ("2019-10-01 00:00:00 UTC", "...+02:00") is converted to UTC,
    text without one is read as local time in `timezone` (an IANA name such as "Europe/Berlin";
    default UTC), and the frame holds naive UTC times. A local time that occurs twice (the clocks
    going back) is read as its first occurrence and counted in
    `attrs["load_report"]["ambiguous_local_times"]`. Rows whose event is one of `ignored_events` are
    dropped and counted in `attrs["load_report"]["ignored"]`; any other event name must be declared
    implicit or explicit. names: the columns of a CSV without a header line. The same arguments can
    live in a TOML file (`mapping.read_mapping`); an error names the file, the data row where there
    is one, and the mapping key with its command-line flag that fixes it.
    """
    path = Path(path)
    source = str(path)
    events = {
        "implicit_events": list(implicit_events),
        "explicit_events": list(explicit_events),
        "ignored_events": list(ignored_events),
    }
    names = None if names is None else list(names)
    check_arguments(source, columns=columns, names=names, timezone=timezone, **events)
    if timestamp_unit not in (*TIME_UNITS, None):
        raise DataError(
            f"{source}: timestamp_unit {timestamp_unit!r} is not one of {TIME_UNIT_CHOICES}; set "
            f"{setting('timestamp_unit')} to one of them."
        )
    timestamp_unit = TIME_UNITS.get(timestamp_unit)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: set {setting('path')} to your shop's events file (.csv, .csv.gz or "
            ".parquet; in a mapping file, a path relative to it)."
        )
    raw = _read_event_file(path, columns, names)
    event = _event_names(raw[columns["event"]], columns["event"], source, events)
    ignored = event.isin(events["ignored_events"]).to_numpy()
    if ignored.all():
        raise DataError(
            f"{source}: every row's event is ignored: {name_counts(event, raw.index.to_numpy())}. Take "
            f"the events to keep out of {setting('ignored_events')}."
        )
    ignored_counts = {name: int(n) for name, n in event[ignored].value_counts().items()}
    raw, event = raw[~ignored], event[~ignored]
    frame = pd.DataFrame({"event": event.to_numpy()})
    id_maps = {}
    for name in ("user_id", "item_id"):
        frame[name], uniques = _ids(raw[columns[name]], columns[name], source)
        if uniques is not None:
            id_maps[name] = uniques
    frame["timestamp"], ambiguous = _event_times(
        raw[columns["timestamp"]], columns["timestamp"], source, timestamp_unit, timezone
    )
    if "category_id" in columns:
        frame["category_id"], uniques = _category_ids(
            raw[columns["category_id"]], columns["category_id"], source
        )
        if uniques is not None:
            id_maps["category_id"] = uniques
    loaded = finalize_events(
        frame,
        explicit_events=events["explicit_events"],
        implicit_events=events["implicit_events"],
        source=source,
        rows=raw.index.to_numpy(),
        time_fix=_time_unit_fix(columns["timestamp"], timestamp_unit),
    )
    loaded.attrs["id_maps"] = id_maps
    loaded.attrs["load_report"] |= {"ignored": ignored_counts, "ambiguous_local_times": ambiguous}
    return loaded


def _read_event_file(path: Path, columns: Mapping[str, str], names: list[str] | None) -> pd.DataFrame:
    """The mapped columns of a CSV (types inferred, the event column as text; `names`: its columns
    when it has no header line) or Parquet file, indexed by 0-based data row. A mapped column that
    is missing or repeated, an empty file or one without rows is a DataError."""
    source = str(path)
    wanted = list(columns.values())
    if path.suffix in (".parquet", ".pq"):
        if names:
            raise DataError(
                f"{source}: {setting('names')} is for a CSV without a header line; a Parquet file names "
                "its columns itself. Remove names."
            )
        try:
            header = pq.read_schema(path).names
        except pa.ArrowInvalid:
            raise DataError(
                f"{source}: not a Parquet file. Write it with pandas' to_parquet, or save it as .csv."
            ) from None
        _check_header(header, columns, source, "the Parquet file's columns are")
        frame = pd.read_parquet(path, columns=wanted)
    elif path.suffix == ".csv" or path.suffixes[-2:] == [".csv", ".gz"]:
        if names:
            _check_header(names, columns, source, f"{setting('names')} lists")
        else:
            no_header = f" If the file has no header line, list its columns in {setting('names')}."
            _check_header(_csv_header(path), columns, source, "the header line has", no_header)
        frame = _read_event_csv(path, wanted, columns["event"], names)
    else:
        raise DataError(
            f"{source}: unsupported file type; save your events as .csv, .csv.gz or .parquet and set "
            f"{setting('path')} to that file."
        )
    if len(frame) == 0:
        what = "is empty" if names else "has a header line but no rows"
        raise DataError(f"{source}: the file {what}; expected one row per event.")
    if names and [str(frame[column].iloc[0]) for column in wanted] == wanted:
        raise DataError(
            f"{source}: the first line is a header line ({', '.join(wanted)}), yet {setting('names')} says "
            "the file has none. Remove names."
        )
    return frame.reset_index(drop=True)


def _check_header(
    header: list[str], columns: Mapping[str, str], source: str, found: str, hint: str = ""
) -> None:
    """Each mapped column is in `header` exactly once; for one that is not, a column whose name
    differs only in case or surrounding spaces is suggested, else `hint` is given. found: "the
    header line has", ..."""
    counts = Counter(header)
    for key, column in columns.items():
        if counts[column] > 1:
            where = " and ".join(str(i + 1) for i, name in enumerate(header) if name == column)
            raise DataError(
                f"{source}: {found} {counts[column]} columns named {column!r} (columns {where}), so "
                f"[columns] {key} = {column!r} is ambiguous. Give each column a name of its own."
            )
    problems, suggested = [], False
    for key, column in columns.items():
        if column in counts:
            continue
        alike = [name for name in header if name.strip().casefold() == column.strip().casefold()]
        if len(alike) == 1:
            problems.append(
                f"[columns] {key} = {column!r} is not a column of the file, but {alike[0]!r} is (names are "
                f"case-sensitive): set [columns] {key} = {alike[0]!r} (--columns {key}={alike[0]},...)"
            )
            suggested = True
        else:
            problems.append(
                f"[columns] {key} = {column!r} (--columns {key}={column}) is not a column of the file"
            )
    if problems:
        listed = ", ".join(map(repr, header[:20])) + (
            f", ... ({len(header)} in all)" if len(header) > 20 else ""
        )
        hint = "" if suggested else hint
        raise DataError(f"{source}: {'; '.join(problems)}. {found[0].upper()}{found[1:]} {listed}.{hint}")


def _read_event_csv(path: Path, wanted: list[str], event: str, names: list[str] | None) -> pd.DataFrame:
    """The `wanted` columns of a CSV, the `event` column as text: by pyarrow, else (a bad line, or
    types that change down the file) by the slower pandas reader, which names a bad line."""
    read = pacsv.ReadOptions(column_names=names) if names else pacsv.ReadOptions()
    convert = pacsv.ConvertOptions(include_columns=wanted, column_types={event: pa.string()})
    try:
        return pacsv.read_csv(path, read, convert_options=convert).to_pandas()
    except pa.ArrowInvalid:  # pyarrow does not say which line
        pass
    header = {"header": None, "names": names} if names else {}
    try:
        return pd.read_csv(path, index_col=False, dtype={event: "str"}, **header)[wanted]
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=wanted)
    except pd.errors.ParserError as error:
        fields = f"name in {setting('names')}" if names else "column of the header line"
        raise DataError(
            f"{path}: {_parser_problem(error)}. Every line needs one value per {fields} (a value holding "
            "a comma needs quotes); fix that line."
        ) from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text. Save the file as UTF-8 CSV.") from None


def _event_names(values: pd.Series, column: str, source: str, events: dict[str, list[str]]) -> pd.Series:
    """The event column as text; an empty name, or one declared in no event list, is a DataError
    naming its count and first data row."""
    names = values.astype(str)  # numeric event codes (from Parquet) as their text
    empty = (values.isna() | (names.str.strip() == "")).to_numpy()
    if empty.any():
        row = values.index[np.flatnonzero(empty)[0]]
        n = int(empty.sum())
        raise DataError(
            f"{source}: column {column!r} has no event name at data row {row + 1} ({n:,} row"
            f"{'s' if n > 1 else ''} in all). Fill in the names, or remove those rows."
        )
    unknown = (~names.isin([name for listed in events.values() for name in listed])).to_numpy()
    if unknown.any():
        declared = "; ".join(
            f"{key.removesuffix('_events')} {', '.join(map(repr, listed)) or 'none'}"
            for key, listed in events.items()
        )
        raise DataError(
            f"{source}: column {column!r} has event names declared in no list: "
            f"{name_counts(names[unknown], values.index.to_numpy()[unknown])}. Declare each in "
            f"{setting('implicit_events')} or {setting('explicit_events')}, or drop it with "
            f"{setting('ignored_events')}. Declared now: {declared}."
        )
    return names


def _ids(values: pd.Series, column: str, source: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer ids as they are; text ids -> codes of their sorted unique values (returned too).

    Integer ids with some text among them (under half the rows) are refused: a typo, most likely,
    that would otherwise turn every id into a code and split the user (or item) it belongs to."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return parse_int_ids(values, column, source), None
    missing = values.isna().to_numpy()
    if missing.any():
        row = values.index[np.flatnonzero(missing)[0]]
        raise DataError(
            f"{source}: column '{column}' has no id at data row {row + 1}. Fill or remove that row."
        )
    text = values.astype(str)
    integer = text.str.fullmatch(r"[+-]?\d+").to_numpy(bool)
    if 0.5 <= integer.mean() < 1:
        row = values.index[np.flatnonzero(~integer)[0]]
        n = int((~integer).sum())
        raise DataError(
            f"{source}: column '{column}' holds integer ids, but data row {row + 1} has "
            f"{shown(values.loc[row])} ({n:,} such row{'s' if n > 1 else ''} in all). Fix or remove "
            f"{'those rows' if n > 1 else 'that row'}."
        )
    codes, uniques = pd.factorize(text, sort=True)
    return codes.astype(np.int64), np.asarray(uniques, dtype=str)


def _category_ids(
    values: pd.Series, column: str, source: str
) -> tuple[pd.arrays.IntegerArray, np.ndarray | None]:
    """Like `_ids`, but a missing category is allowed (<NA>)."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return _parse_ints(values, column, source, rows=values.index.to_numpy(), optional=True), None
    codes, uniques = pd.factorize(values.astype("str"), sort=True)  # missing values get code -1
    return pd.arrays.IntegerArray(codes.astype(np.int64), codes < 0), np.asarray(uniques, dtype=str)


def _event_times(
    values: pd.Series, column: str, source: str, unit: str | None, zone: str | None
) -> tuple[np.ndarray, int]:
    """The time column -> naive UTC datetime64[ms], and how many local times were ambiguous.

    Epoch numbers (with `unit`) count from 1970-01-01 UTC; times with a zone (ISO text, or a zoned
    column as pyarrow reads "+02:00" text or Parquet stores it) are instants; times without one are
    local times in `zone` (default UTC)."""
    where = f"{source}: column {column!r}"
    numbers = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    empty = values.isna().to_numpy()
    if not numbers and not pd.api.types.is_datetime64_any_dtype(values):
        empty = empty | (values.astype(str).str.strip() == "").to_numpy()
    if empty.any():
        row = values.index[np.flatnonzero(empty)[0]]
        raise DataError(f"{where} has no time at data row {row + 1}. Fill or remove that row.")
    if unit is not None:
        return _epoch_times(values, where, unit), 0
    if numbers:
        likely = _likely_unit(values)
        how = (
            f"set {setting('timestamp_unit', likely)}: they look like epoch {UNIT_NAMES[likely]}"
            if likely
            else f"set {setting('timestamp_unit')} to the unit they count"
        )
        raise DataError(
            f"{where} holds numbers, so the mapping must say what they count: {how}. The choices of "
            f"timestamp_unit are {TIME_UNIT_CHOICES}."
        )
    times = values if pd.api.types.is_datetime64_any_dtype(values) else _iso_times(values, where)
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        return _naive_utc(times), 0
    return _local_times_in_utc(times, zone or "UTC", where)


def _epoch_times(values: pd.Series, where: str, unit: str) -> np.ndarray:
    """Epoch numbers in `unit` -> datetime64[ms]; a value that is not a number names the fix."""
    if pd.api.types.is_datetime64_any_dtype(values):
        raise DataError(
            f"{where} holds date-times, not epoch numbers: set {setting('timestamp_unit', 'iso')}."
        )
    times = pd.to_datetime(pd.to_numeric(values, errors="coerce"), unit=unit, errors="coerce")
    bad = times.isna().to_numpy()
    if bad.any():
        row = values.index[np.flatnonzero(bad)[0]]
        raise DataError(
            f"{where} has {shown(values.loc[row])} at data row {row + 1}, not a number of epoch "
            f"{UNIT_NAMES.get(unit, unit)} (timestamp_unit = {unit!r}). For ISO date-time text set "
            f"{setting('timestamp_unit', 'iso')}; else fix or remove that row."
        )
    return times.to_numpy().astype("datetime64[ms]")


def _likely_unit(numbers: pd.Series) -> str | None:
    """The unit, "s" or "ms", that puts every number within 1990-2100; None if neither does."""
    low, high = np.array(PLAUSIBLE_TIMES).astype(np.int64)  # epoch milliseconds
    for unit, per_ms in (("s", 1e-3), ("ms", 1)):
        if low * per_ms <= numbers.min() and numbers.max() < high * per_ms:
            return unit
    return None


def _iso_times(values: pd.Series, where: str) -> pd.Series:
    """ISO 8601 text -> UTC times if every value names its zone, local (naive) times if none does.

    A trailing "UTC" or "GMT" is the zone +00:00. A value names its zone when a time (after "T" or
    a space) ends in Z or an offset (ISO_ZONE); pandas' own reading of the first value of each kind
    confirms it, so that a layout this test misreads is an error, never a silent shift."""
    text = pc.utf8_trim_whitespace(pa.array(values.astype(str)))
    text = pd.Series(pc.replace_substring_regex(text, r" ?(?:UTC|GMT)$", "+00:00"), index=values.index)
    parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = values.index[np.flatnonzero(bad)[0]]
        raise DataError(
            f"{where} has {shown(values.loc[row])} at data row {row + 1}, not an ISO 8601 date-time. Write "
            "times like 2019-10-01 14:30:00 (a zone such as +02:00 or UTC may follow), or give epoch "
            f"numbers and set {setting('timestamp_unit')} to s or ms."
        )
    zoned = pc.match_substring_regex(pa.array(text), ISO_ZONE).to_numpy(zero_copy_only=False)
    for kind in (zoned, ~zoned):
        if kind.any():
            first = np.flatnonzero(kind)[0]
            alone = pd.to_datetime(text.iloc[first : first + 1], format="ISO8601")
            if isinstance(alone.dtype, pd.DatetimeTZDtype) != zoned[first]:
                raise DataError(
                    f"{where} has {shown(values.iloc[first])} at data row {text.index[first] + 1}, "
                    "whose zone cannot be told; write times like 2019-10-01 14:30:00, with +02:00, Z or "
                    "UTC after them if they carry a zone."
                )
    if zoned.all():
        return parsed
    if not zoned.any():
        return parsed.dt.tz_localize(None)
    with_zone, without = (values.index[np.flatnonzero(rows)[0]] for rows in (zoned, ~zoned))
    raise DataError(
        f"{where} mixes times with a zone ({shown(values.loc[with_zone])} at data row {with_zone + 1}) "
        f"and without ({shown(values.loc[without])} at data row {without + 1}). Write every time with its "
        "zone, or none (then the mapping's timezone names their zone; default UTC)."
    )


def _local_times_in_utc(times: pd.Series, zone: str, where: str) -> tuple[np.ndarray, int]:
    """Naive local times in `zone` -> naive UTC datetime64[ms], and how many were ambiguous (they
    occur twice when the clocks go back: the first is taken). A time the clocks skip is an error."""
    if zone == "UTC":
        return times.to_numpy().astype("datetime64[ms]"), 0
    local = times.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    unresolved = local.isna().to_numpy()
    if unresolved.any():
        first = times[unresolved].dt.tz_localize(
            zone, ambiguous=np.ones(unresolved.sum(), bool), nonexistent="NaT"
        )
        skipped = first.isna().to_numpy()
        if skipped.any():
            row = first.index[np.flatnonzero(skipped)[0]]
            raise DataError(
                f"{where} has {times.loc[row]} at data row {row + 1}, a time that does not exist in "
                f"{zone} (the clocks skip it). Check {setting('timezone', zone)}, or write the times with "
                "their zone (+02:00) or in UTC."
            )
        local = local.mask(unresolved, first.reindex(local.index))  # no chained assignment (pandas 2.2)
    return _naive_utc(local), int(unresolved.sum())


def _naive_utc(times: pd.Series) -> np.ndarray:
    """Zoned times -> the same instants as naive UTC datetime64[ms] (the canonical frame's times)."""
    return times.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ms]")


def _time_unit_fix(column: str, unit: str | None) -> str:
    """What to check when the times fall outside 1990-2100."""
    other = {"s": "ms", "ms": "s"}.get(unit)
    if other is None:
        return f"Check that column {column!r} ([columns] timestamp, --columns timestamp=COL) holds the times."
    return (
        f"Column {column!r} is read as epoch {UNIT_NAMES[unit]} (timestamp_unit = {unit!r}); if it holds "
        f"epoch {UNIT_NAMES[other]}, set {setting('timestamp_unit', other)}."
    )


# --------------------------------------------------------------------------- shared helpers
def _csv_header(path: Path) -> list[str]:
    """The column names on the first line of a CSV (.csv or .csv.gz) as written, repeats included;
    an empty file is a DataError."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(
            path, "rt", encoding="utf-8-sig", newline=""
        ) as file:
            header = next(csv.reader(file), None)
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text. Save the file as UTF-8 CSV.") from None
    if not header:
        raise DataError(
            f"{path}: the file is empty; expected a header line, then one row per record. "
            "Download or export it again."
        )
    return header


def _parser_problem(error: pd.errors.ParserError) -> str:
    """pandas' message on a bad CSV line without its parser's prefix: "Expected 4 fields in line 7, saw 5"."""
    return str(error).strip().removeprefix("Error tokenizing data. C error: ")


def _read_text(path: Path, header: bool, nrows: int | None = None) -> pd.DataFrame:
    """Every field as text (empty stays ""): the slow, forgiving read used to locate a bad row."""
    try:
        return pd.read_csv(
            path, header=0 if header else None, index_col=False, dtype=str, keep_default_na=False, nrows=nrows
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty. Download or export it again.") from None
    except pd.errors.ParserError as error:
        raise DataError(
            f"{path}: {_parser_problem(error)}. Every row needs the same number of fields; fix that line."
        ) from None


def _read_headerless(path: Path, names: list[str], keep: list[str]) -> pa.Table:
    """The `keep` columns (as text) of a header-less CSV whose columns are `names`, in order."""
    options = pacsv.ConvertOptions(include_columns=keep, column_types=dict.fromkeys(keep, pa.string()))
    try:
        return pacsv.read_csv(
            path, read_options=pacsv.ReadOptions(column_names=names), convert_options=options
        )
    except pa.ArrowInvalid:
        text = _read_text(path, header=False)
    if text.shape[1] != len(names):
        raise DataError(
            f"{path}: {text.shape[1]} fields per row; expected {len(names)} ({', '.join(names)}). "
            "Check that this is the right file."
        )
    text.columns = names
    return pa.Table.from_pandas(text[keep], preserve_index=False)


def _parse_ints(
    values: pd.Series, column: str, source: str, rows: np.ndarray | None = None, optional: bool = False
) -> pd.arrays.IntegerArray:
    """Integers (text or numbers) -> Int64, empty -> <NA> when `optional`.

    A bad value raises a DataError naming data row rows[i] + 1 (`rows`: the file rows of `values`,
    when they are a filtered subset; default: their positions).
    """
    empty = (values.isna() | (values.astype(str) == "")).to_numpy()
    numeric = pd.to_numeric(values.mask(empty), errors="coerce", dtype_backend="numpy_nullable")
    bad = ~empty & (numeric.isna() | (numeric % 1 != 0).fillna(True)).to_numpy(bool)
    if not optional:
        bad |= empty
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        row = int(rows[i]) if rows is not None else i
        raise DataError(
            f"{source}: column '{column}' has a value that is not an integer at data row {row + 1}: "
            f"{values.iloc[i]!r}. Fix or remove that row."
        )
    return pd.array(numeric.mask(empty), dtype="Int64")


def _lookup(
    keys: np.ndarray, values: np.ndarray | pd.arrays.IntegerArray, query: pd.Series
) -> pd.arrays.IntegerArray:
    """values[i] where keys[i] == q, for each q of `query`; <NA> where q is <NA> or not a key."""
    query = pd.array(query, dtype="Int64")
    known = ~np.asarray(query.isna())
    position = np.full(len(query), -1, dtype=np.intp)
    position[known] = pd.Index(keys).get_indexer(query[known].to_numpy(np.int64))
    return pd.array(values, dtype="Int64").take(position, allow_fill=True)


def _report_categories(events: pd.DataFrame) -> pd.DataFrame:
    """Count, in attrs["load_report"], the events whose item has no known category."""
    if "category_id" in events.columns:
        events.attrs["load_report"]["events_without_category"] = int(events["category_id"].isna().sum())
    return events
