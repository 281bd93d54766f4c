"""Datasets: loaders to one canonical event frame, the synthetic shop, preprocessing, Table 1.

events = load_dataset("synthetic", scale="course", seed=0)   # or "retailrocket", "recobell", "events"
data = preprocess(events)                                    # users >= 5 interactions, dense ids
table1(data)                                                 # the paper's Table 1 row
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .preprocess import PADDING_ITEM, Interactions, preprocess, table1
from .schema import DataError
from .synthetic import PRESETS, ShopConfig, SyntheticShop, generate_shop, shop_config

DATASETS = ("synthetic", "retailrocket", "recobell", "events")
REPO_DATA_DIR = Path(__file__).resolve().parents[2] / "data"

__all__ = [
    "DATASETS",
    "PADDING_ITEM",
    "PRESETS",
    "DataError",
    "Interactions",
    "ShopConfig",
    "SyntheticShop",
    "default_data_dir",
    "generate_shop",
    "load_dataset",
    "load_synthetic_shop",
    "preprocess",
    "table1",
]


def default_data_dir() -> Path:
    """`$RECSYS_DATA_DIR` if set, else the repository's `data/` folder."""
    return Path(os.environ.get("RECSYS_DATA_DIR", REPO_DATA_DIR))


def load_dataset(name: str, data_dir: str | Path | None = None, **options) -> pd.DataFrame:
    """Load a dataset as the canonical event frame (see `schema`).

    name: "synthetic" (options: scale, seed; generated once and cached under data_dir/cache),
    "retailrocket" / "recobell" (data_dir defaults to data/<name>), or "events" (a file of your own
    shop: data_dir is its TOML mapping file (`mapping`), and/or options path, columns, names,
    explicit_events, implicit_events, ignored_events, timestamp_unit, timezone override the file's
    entries; times end up naive UTC, text without a zone being read in `timezone`, default UTC).
    """
    from . import loaders  # the real-format readers

    if name == "synthetic":
        scale, seed = options.pop("scale", "course"), options.pop("seed", 0)
        _reject_options(name, options)
        return loaders.load_retailrocket(synthetic_dir(scale, seed, data_dir))
    if name in ("retailrocket", "recobell"):
        _reject_options(name, options)
        folder = Path(data_dir) if data_dir is not None else default_data_dir() / name
        return getattr(loaders, f"load_{name}")(folder)
    if name == "events":
        from .mapping import read_mapping

        if data_dir is None and "path" not in options:
            raise ValueError(
                "load_dataset('events', ...) needs your shop's mapping file (load_dataset('events', "
                "'shop.toml')) or path=..., columns={...}, explicit_events=[...], implicit_events=[...]."
            )
        mapping = (read_mapping(data_dir) if data_dir is not None else {}) | options
        return loaders.load_events(mapping.pop("path"), **mapping)
    raise ValueError(f"unknown dataset {name!r}; choose one of {list(DATASETS)}.")


def synthetic_dir(
    scale: str | ShopConfig = "course", seed: int = 0, data_dir: str | Path | None = None
) -> Path:
    """Folder of the cached synthetic shop for (scale, seed), generated and written on first use."""
    config = shop_config(scale)
    label = scale if isinstance(scale, str) else f"custom-{abs(hash(config)):x}"
    folder = Path(data_dir or default_data_dir()) / "cache" / "synthetic" / f"{label}-seed{seed}"
    if not (folder / "config.json").exists():
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")
        generate_shop(config, seed=seed).write(partial)
        partial.replace(folder)  # atomic: an interrupted run never leaves a half-written cache
    return folder


def load_synthetic_shop(scale: str | ShopConfig = "course", seed: int = 0, data_dir=None) -> SyntheticShop:
    """The ground truth (tastes, intents, shifts, oracle) of the cached synthetic shop."""
    return SyntheticShop.read(synthetic_dir(scale, seed, data_dir))


def _reject_options(name: str, options: dict) -> None:
    if options:
        raise ValueError(f"load_dataset({name!r}) got unknown option(s) {sorted(options)}.")
