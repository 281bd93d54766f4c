import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_helpers.data import DataError, load_dataset
from recsys_helpers.data.loaders import hex_ids, load_events, load_recobell, load_retailrocket

FIXTURES = Path(__file__).parent / "fixtures"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "realdata"
needs_shared = pytest.mark.skipif(not SHARED.exists(), reason="../shared/realdata is not present")


def copy_fixture(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


# ---------------------------------------------------------------------- RetailRocket
def test_retailrocket_gives_the_canonical_frame_sorted_by_user_and_time():
    events = load_retailrocket(FIXTURES / "retailrocket")
    assert list(events.columns[:5]) == ["user_id", "item_id", "timestamp", "event", "explicit"]
    assert str(events["timestamp"].dtype) == "datetime64[ms]" and events["user_id"].dtype == np.int64
    assert events.equals(events.sort_values(["user_id", "timestamp"], kind="stable"))
    first = events[events["user_id"] == 257597]
    assert first["event"].tolist() == ["addtocart", "view", "transaction"]


def test_retailrocket_views_are_implicit_carts_and_transactions_explicit():
    events = load_retailrocket(FIXTURES / "retailrocket")
    flags = events.groupby("event", observed=True)["explicit"].agg(["min", "max"])
    assert flags.loc["view"].tolist() == [False, False]
    assert flags.loc["addtocart"].tolist() == flags.loc["transaction"].tolist() == [True, True]


def test_retailrocket_exact_duplicates_are_kept_and_counted():
    events = load_retailrocket(FIXTURES / "retailrocket")
    assert len(events) == 10
    assert events.attrs["load_report"]["exact_duplicates"] == 1


def test_the_latest_categoryid_wins_and_the_tree_gives_the_root():
    events = load_retailrocket(FIXTURES / "retailrocket").drop_duplicates("item_id").set_index("item_id")
    assert events.loc[355908, "category_id"] == 1338  # 1173 earlier, 1338 later
    assert events.loc[253185, "top_category_id"] == 250
    assert pd.isna(events.loc[248676, "category_id"])  # only an 'available' property


def test_category_columns_only_when_the_property_files_exist(tmp_path):
    folder = tmp_path / "rr"
    folder.mkdir()
    shutil.copy(FIXTURES / "retailrocket" / "events.csv", folder)
    assert "category_id" not in load_retailrocket(folder).columns


def test_missing_events_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="retailrocket/ecommerce-dataset"):
        load_retailrocket(tmp_path)


def _write_events(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "rr"
    folder.mkdir(exist_ok=True)
    (folder / "events.csv").write_text(text)
    return folder


def test_missing_column_is_named(tmp_path):
    folder = _write_events(tmp_path, "timestamp,visitor,event,itemid\n1433221332117,1,view,2\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['visitorid'\]"):
        load_retailrocket(folder)


def test_unknown_event_name_is_named_with_its_row(tmp_path):
    text = "timestamp,visitorid,event,itemid\n1433221332117,1,view,2\n1433221332118,1,wishlist,2\n"
    with pytest.raises(DataError, match=r"unknown event name.*wishlist.*data row 2"):
        load_retailrocket(_write_events(tmp_path, text))


def test_bad_id_is_named_with_its_row(tmp_path):
    text = "timestamp,visitorid,event,itemid\n1433221332117,1,view,2\n1433221332118,abc,view,2\n"
    with pytest.raises(DataError, match=r"'visitorid'.*data row 2: 'abc'"):
        load_retailrocket(_write_events(tmp_path, text))


def test_bad_timestamp_is_named_with_its_row(tmp_path):
    text = "timestamp,visitorid,event,itemid\n1433221332117,1,view,2\nyesterday,1,view,2\n"
    with pytest.raises(DataError, match=r"unparsable timestamp at data row 2"):
        load_retailrocket(_write_events(tmp_path, text))


def test_empty_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="empty"):
        load_retailrocket(_write_events(tmp_path, ""))


def test_header_only_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no events found"):
        load_retailrocket(_write_events(tmp_path, "timestamp,visitorid,event,itemid\n"))


# ---------------------------------------------------------------------- Recobell
def test_recobell_parses_hex_ids_exactly_and_flags_orders_explicit():
    events = load_recobell(FIXTURES / "recobell")
    assert len(events) == 6
    assert 0x1DBE8CD in set(events["user_id"]) and 0xCCCDA36 in set(events["item_id"])
    assert events.groupby("event", observed=True)["explicit"].first().to_dict() == {
        "order": True,
        "view": False,
    }


def test_recobell_products_give_the_finest_and_the_top_category():
    events = load_recobell(FIXTURES / "recobell").drop_duplicates("item_id").set_index("item_id")
    assert events.loc[0xCCCDA36, "category_id"] == 0x631746E  # category4
    assert events.loc[0x01196D7, "category_id"] == 0xAEF1A1E  # category3, 4 empty -> category2
    assert events.loc[0x01196D7, "top_category_id"] == 0xC9DE0E0
    assert pd.isna(events.loc[0xA0B1C2D, "category_id"])


def test_recobell_accepts_the_distributed_small_gz_names(tmp_path):
    folder = tmp_path / "rb"
    folder.mkdir()
    for name in ("site_view_log", "site_order_log"):
        with gzip.open(folder / f"{name}_small.csv000.gz", "wb") as out:
            out.write((FIXTURES / "recobell" / f"{name}.csv000").read_bytes())
    assert len(load_recobell(folder)) == 6


def test_recobell_missing_order_log_is_named(tmp_path):
    folder = tmp_path / "rb"
    folder.mkdir()
    shutil.copy(FIXTURES / "recobell" / "site_view_log.csv000", folder)
    with pytest.raises(FileNotFoundError, match="order log.*PAKDD 2017"):
        load_recobell(folder)


def test_recobell_wrong_column_count_is_a_clear_error(tmp_path):
    folder = copy_fixture("recobell", tmp_path)
    (folder / "site_view_log.csv000").write_text('"2016-09-29 10:59:21.694","MA","1dbe8cd","cccda36"\n')
    with pytest.raises(DataError, match="expected 5 header-less columns"):
        load_recobell(folder)


def test_non_hex_id_is_named_with_its_row():
    with pytest.raises(DataError, match=r"'uid'.*data row 2: 'xyz'"):
        hex_ids(pd.Series(["1dbe8cd", "xyz"]), "uid", "f")
    assert hex_ids(pd.Series(["ff", "0A", "1dbe8cd"]), "uid", "f").tolist() == [255, 10, 0x1DBE8CD]


# ---------------------------------------------------------------------- your own events
def test_own_csv_with_string_ids_is_factorised_and_mapped(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("who,what,when,kind\nbob,tea,2024-01-02 10:00,look\nann,cup,2024-01-01 09:00,buy\n")
    columns = {"user_id": "who", "item_id": "what", "timestamp": "when", "event": "kind"}
    events = load_events(path, columns=columns, explicit_events=["buy"], implicit_events=["look"])
    assert events["user_id"].tolist() == [0, 1]
    assert events.attrs["id_maps"]["user_id"].tolist() == ["ann", "bob"]
    assert events["explicit"].tolist() == [True, False]


def test_own_parquet_with_epoch_seconds(tmp_path):
    path = tmp_path / "shop.parquet"
    pd.DataFrame({"u": [1, 1], "i": [5, 6], "t": [1_700_000_000, 1_700_000_060], "e": ["v", "b"]}).to_parquet(
        path
    )
    columns = {"user_id": "u", "item_id": "i", "timestamp": "t", "event": "e"}
    events = load_events(
        path, columns=columns, explicit_events=["b"], implicit_events=["v"], timestamp_unit="s"
    )
    assert events["timestamp"].iloc[1] - events["timestamp"].iloc[0] == pd.Timedelta(seconds=60)


def test_own_events_bad_mapping_key_is_refused(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("u,i,t,e\n1,2,2024-01-01,v\n")
    with pytest.raises(DataError, match="unknown key"):
        load_events(path, columns={"user": "u"}, explicit_events=["b"], implicit_events=["v"])


def test_load_dataset_dispatches_and_rejects_unknown_names(tmp_path):
    assert len(load_dataset("retailrocket", FIXTURES / "retailrocket")) == 10
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("movielens")
    with pytest.raises(ValueError, match="unknown option"):
        load_dataset("recobell", FIXTURES / "recobell", scale="ci")


def test_synthetic_dataset_reads_back_through_the_retailrocket_loader(tmp_path):
    from recsys_helpers.data import generate_shop

    from_files = load_dataset("synthetic", tmp_path, scale="ci", seed=5)
    in_memory = generate_shop("ci", seed=5).canonical_events()
    pd.testing.assert_frame_equal(from_files.reset_index(drop=True), in_memory.reset_index(drop=True))
    assert (tmp_path / "cache" / "synthetic" / "ci-seed5" / "config.json").exists()


# ---------------------------------------------------------------------- real-format samples
@needs_shared
def test_real_retailrocket_sample_matches_its_documented_counts(tmp_path):
    shutil.copy(SHARED / "retailrocket" / "events_sample_5000visitors.csv", tmp_path / "events.csv")
    shutil.copy(SHARED / "retailrocket" / "category_tree.csv", tmp_path)
    events = load_retailrocket(tmp_path)
    assert len(events) == 9385 and events["user_id"].nunique() == 5000
    assert events["event"].value_counts()["transaction"] == 46
    assert events.attrs["load_report"]["exact_duplicates"] == 3


@needs_shared
def test_real_recobell_excerpts_load(tmp_path):
    for src, name in [
        ("site_view_log_excerpt.csv", "site_view_log.csv000"),
        ("site_order_log_excerpt.csv", "site_order_log.csv000"),
        ("site_product_excerpt.csv", "site_product_w_img.csv000"),
    ]:
        shutil.copy(SHARED / "recobell" / src, tmp_path / name)
    events = load_recobell(tmp_path)
    assert events["event"].value_counts().to_dict() == {"view": 198, "order": 195}
    assert events["user_id"].nunique() == len({*events[events.event == "view"].user_id}) + 162 - 16
