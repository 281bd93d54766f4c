"""Readers for the real file formats -> the canonical event frame (see `schema`).

Each reader only finds the files, parses columns and hands the result to
`schema.finalize_events`, which validates it. Errors name the file, the column, the data row
(1-based, header not counted) and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .schema import DataError, finalize_events, parse_int_ids, parse_timestamps, require_columns

RETAILROCKET_HELP = (
    "Download the Kaggle dataset 'retailrocket/ecommerce-dataset' and put events.csv "
    "(and optionally item_properties_part1.csv, item_properties_part2.csv, category_tree.csv) "
    "in that folder; see data/README.md."
)
RECOBELL_HELP = (
    "Get the PAKDD 2017 Recobell release (site_view_log, site_order_log and optionally "
    "site_product_w_img csv000 files) and put them in that folder; see data/README.md."
)
RECOBELL_VIEW = ["server_time", "device", "session_id", "uid", "item_id"]
RECOBELL_ORDER = [*RECOBELL_VIEW, "order_id", "quantity"]
RECOBELL_PRODUCT = [
    "item_id",
    "item_image",
    "price",
    "category1",
    "category2",
    "category3",
    "category4",
    "brand",
]


def _read_csv(path: Path, **options) -> pd.DataFrame:
    """Read a CSV with the fast pyarrow engine; an empty file is a clear DataError."""
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty. Re-download it.")
    try:
        return pd.read_csv(path, engine="pyarrow", **options)
    except (ValueError, pd.errors.ParserError) as error:  # pyarrow's parse errors arrive as ValueError
        raise DataError(
            f"{path}: could not be parsed as CSV ({error}). Check that it is the right file."
        ) from error


def _find(
    folder: Path, names: Iterable[str], what: str, help_text: str, required: bool = True
) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.exists():
                return candidate
    if required:
        raise FileNotFoundError(
            f"{what} not found in {folder.resolve()} (looked for {list(names)}). {help_text}"
        )
    return None


# --------------------------------------------------------------------------- RetailRocket
def load_retailrocket(data_dir: str | Path) -> pd.DataFrame:
    """RetailRocket (Kaggle): events.csv (+ item categories when the property files are there).

    view is implicit; addtocart and transaction are explicit. category_id is each item's latest
    `categoryid` property; top_category_id its root in category_tree.csv.
    """
    folder = Path(data_dir)
    path = _find(folder, ["events.csv"], "events.csv", RETAILROCKET_HELP)
    raw = _read_csv(path)
    require_columns(raw, ["timestamp", "visitorid", "event", "itemid"], str(path))
    frame = pd.DataFrame(
        {
            "user_id": parse_int_ids(raw["visitorid"], "visitorid", str(path)),
            "item_id": parse_int_ids(raw["itemid"], "itemid", str(path)),
            "timestamp": parse_timestamps(raw["timestamp"], "timestamp", str(path), unit="ms"),
            "event": raw["event"].astype(str),
        }
    )
    categories = _retailrocket_categories(folder)
    if categories is not None:
        frame["category_id"] = categories.reindex(frame["item_id"]).to_numpy()
        tree = _find(folder, ["category_tree.csv"], "category_tree.csv", RETAILROCKET_HELP, required=False)
        if tree is not None:
            roots = category_roots(tree)
            frame["top_category_id"] = roots.reindex(frame["category_id"]).to_numpy()
    return finalize_events(
        frame, explicit_events=["addtocart", "transaction"], implicit_events=["view"], source=str(path)
    )


def _retailrocket_categories(folder: Path) -> pd.Series | None:
    """item id -> its categoryid with the latest timestamp (None when no property file exists)."""
    files = sorted(folder.glob("item_properties*.csv")) + sorted(folder.glob("item_properties*.csv.gz"))
    if not files:
        return None
    parts = []
    for path in files:
        raw = _read_csv(path)
        require_columns(raw, ["timestamp", "itemid", "property", "value"], str(path))
        rows = raw[raw["property"].astype(str) == "categoryid"]
        parts.append(
            pd.DataFrame(
                {
                    "timestamp": pd.to_numeric(rows["timestamp"], errors="coerce"),
                    "item": parse_int_ids(rows["itemid"], "itemid", str(path)),
                    "category": parse_int_ids(rows["value"], "value (categoryid)", str(path)),
                }
            )
        )
    table = pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable")
    return table.drop_duplicates("item", keep="last").set_index("item")["category"]


def category_roots(path: Path) -> pd.Series:
    """category id -> its root in a categoryid,parentid tree (roots have an empty parent)."""
    raw = _read_csv(path)
    require_columns(raw, ["categoryid", "parentid"], str(path))
    parent = pd.Series(pd.to_numeric(raw["parentid"]).to_numpy(), index=raw["categoryid"].to_numpy())
    root = pd.Series(parent.index.to_numpy(), index=parent.index)
    for _ in range(len(parent) + 1):  # climb one level per pass, all categories at once
        up = parent.reindex(root.to_numpy()).to_numpy()
        climbing = ~np.isnan(up)
        if not climbing.any():
            return root
        root[climbing] = up[climbing].astype(np.int64)
    raise DataError(f"{path}: the category tree has a cycle. Check the parentid column.")


# --------------------------------------------------------------------------- Recobell
def load_recobell(data_dir: str | Path) -> pd.DataFrame:
    """Recobell (PAKDD'17): header-less quoted view and order logs (+ product categories).

    view is implicit, order explicit (one event per order row, whatever the quantity). The
    7-hex-digit uid / item_id / category ids become int64 by base-16 parsing (lossless).
    """
    folder = Path(data_dir)
    view_path = _find(
        folder, ["site_view_log.csv000", "site_view_log_small.csv000"], "the view log", RECOBELL_HELP
    )
    order_path = _find(
        folder, ["site_order_log.csv000", "site_order_log_small.csv000"], "the order log", RECOBELL_HELP
    )
    parts = []
    for path, columns, event in ((view_path, RECOBELL_VIEW, "view"), (order_path, RECOBELL_ORDER, "order")):
        raw = _read_headerless(path, columns)
        parts.append(
            pd.DataFrame(
                {
                    "user_id": hex_ids(raw["uid"], "uid", str(path)),
                    "item_id": hex_ids(raw["item_id"], "item_id", str(path)),
                    "timestamp": parse_timestamps(raw["server_time"], "server_time", str(path)),
                    "event": event,
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    product_path = _find(
        folder,
        ["site_product_w_img.csv000", "site_product.csv000"],
        "products",
        RECOBELL_HELP,
        required=False,
    )
    if product_path is not None:
        products = _read_headerless(product_path, RECOBELL_PRODUCT)
        finest = products["category4"]
        for level in ("category3", "category2", "category1"):
            finest = finest.where(finest.notna() & (finest.astype(str) != ""), products[level])
        items = hex_ids(products["item_id"], "item_id", str(product_path))
        leaf = pd.Series(hex_ids(finest, "category", str(product_path)), index=items)
        top = pd.Series(hex_ids(products["category1"], "category1", str(product_path)), index=items)
        leaf, top = leaf[~leaf.index.duplicated()], top[~top.index.duplicated()]
        frame["category_id"] = leaf.reindex(frame["item_id"]).to_numpy()
        frame["top_category_id"] = top.reindex(frame["item_id"]).to_numpy()
    return finalize_events(frame, explicit_events=["order"], implicit_events=["view"], source=str(folder))


def _read_headerless(path: Path, columns: list[str]) -> pd.DataFrame:
    raw = _read_csv(path, header=None, dtype=str)
    if raw.shape[1] != len(columns):
        raise DataError(
            f"{path}: expected {len(columns)} header-less columns ({', '.join(columns)}), "
            f"found {raw.shape[1]}. Check that it is the right Recobell file."
        )
    raw.columns = columns
    return raw


_HEX = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate("0123456789abcdef"):
    _HEX[ord(_c)] = _i
    _HEX[ord(_c.upper())] = _i


def hex_ids(values: pd.Series, column: str, source: str) -> np.ndarray:
    """Parse hexadecimal id strings (up to 15 digits) to int64, vectorised; errors name the row."""
    text = values.astype(str).to_numpy()
    lengths = np.char.str_len(text.astype("U"))
    width = int(lengths.max()) if len(text) else 1
    codes = np.frombuffer(text.astype(f"S{width}").tobytes(), dtype=np.uint8).reshape(len(text), width)
    digits = _HEX[codes]
    present = np.arange(width)[None, :] < lengths[:, None]
    bad = (present & (digits < 0)).any(axis=1) | (lengths == 0) | (lengths > 15) | values.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{source}: column '{column}' has a value that is not a hexadecimal id (1-15 digits) at data row "
            f"{row + 1}: {values.iloc[row]!r}. Fix or remove that row."
        )
    shift = 4 * (lengths[:, None] - 1 - np.arange(width)[None, :])
    return np.where(present, digits << np.maximum(shift, 0), 0).sum(axis=1)


# --------------------------------------------------------------------------- your own shop
CANONICAL_SOURCES = ("user_id", "item_id", "timestamp", "event", "category_id")


def load_events(
    path: str | Path,
    *,
    columns: dict[str, str],
    explicit_events: Iterable[str],
    implicit_events: Iterable[str],
    timestamp_unit: str | None = None,
) -> pd.DataFrame:
    """Any CSV or Parquet event log: `columns` maps canonical names to the file's column names.

    String ids are factorised (sorted unique values -> 0..n-1) and the mapping is kept in
    `attrs["id_maps"]`. Timestamps are epoch numbers (give `timestamp_unit`, e.g. "s", "ms") or
    date strings.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path.resolve()} does not exist. Pass the path of your events file.")
    unknown = sorted(set(columns) - set(CANONICAL_SOURCES))
    if unknown:
        raise DataError(f"columns mapping has unknown key(s) {unknown}; use {list(CANONICAL_SOURCES)}.")
    missing = [c for c in ("user_id", "item_id", "timestamp", "event") if c not in columns]
    if missing:
        raise DataError(f"columns mapping lacks {missing}; map each to a column of {path.name}.")
    raw = pd.read_parquet(path) if path.suffix == ".parquet" else _read_csv(path)
    require_columns(raw, columns.values(), str(path))
    frame, id_maps = pd.DataFrame(), {}
    for key in ("user_id", "item_id"):
        values = raw[columns[key]]
        if pd.api.types.is_numeric_dtype(values):
            frame[key] = parse_int_ids(values, columns[key], str(path))
        else:
            codes, uniques = pd.factorize(values.astype(str), sort=True)
            frame[key], id_maps[key] = codes.astype(np.int64), np.asarray(uniques)
    frame["timestamp"] = parse_timestamps(
        raw[columns["timestamp"]], columns["timestamp"], str(path), timestamp_unit
    )
    frame["event"] = raw[columns["event"]].astype(str).to_numpy()
    if "category_id" in columns:
        frame["category_id"] = pd.to_numeric(raw[columns["category_id"]], errors="coerce").to_numpy()
    out = finalize_events(
        frame, explicit_events=explicit_events, implicit_events=implicit_events, source=str(path)
    )
    out.attrs["id_maps"] = id_maps
    return out
