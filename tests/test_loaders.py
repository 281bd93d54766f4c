"""The raw-file loaders: canonical output, category joins, and one clear error per kind of bad input."""

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys_helpers.data import DataError, generate_shop, load_dataset
from recsys_helpers.data.loaders import load_events, load_recobell, load_retailrocket

FIXTURES = Path(__file__).parent / "fixtures"
REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
needs_realdata = pytest.mark.skipif(
    not REALDATA.is_dir(), reason=f"real-format samples not present at {REALDATA} (see its SOURCES.md)"
)
CANONICAL_DTYPES = {
    "user_id": "int64",
    "item_id": "int64",
    "timestamp": "datetime64[ms]",
    "event": "category",
    "explicit": "bool",
    "category_id": "Int64",
    "top_category_id": "Int64",
}
HEADER = "timestamp,visitorid,event,itemid,transactionid\n"
VIEW = '"2016-09-29 10:59:21.694","MA","r3jbBBHfMI","{uid}","cccda36"\n'


def copy_fixture(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def by_item(events: pd.DataFrame) -> pd.DataFrame:
    return events.drop_duplicates("item_id").set_index("item_id")


# ---------------------------------------------------------------------- RetailRocket
@pytest.fixture(scope="module")
def retailrocket() -> pd.DataFrame:
    return load_retailrocket(FIXTURES / "retailrocket")


def write_events(tmp_path: Path, text: str) -> Path:
    (tmp_path / "events.csv").write_text(text)
    return tmp_path


def test_retailrocket_columns_have_the_canonical_dtypes(retailrocket):
    assert {c: str(t) for c, t in retailrocket.dtypes.items()} == CANONICAL_DTYPES


def test_retailrocket_rows_are_sorted_by_user_then_time(retailrocket):
    user = retailrocket[retailrocket["user_id"] == 257597]
    assert user["event"].tolist() == ["addtocart", "view", "transaction"]
    assert retailrocket.equals(retailrocket.sort_values(["user_id", "timestamp"], kind="stable"))


def test_retailrocket_timestamps_are_the_epoch_milliseconds(retailrocket):
    assert retailrocket["timestamp"].min() == pd.Timestamp("2015-06-02 05:00:04.592")


def test_retailrocket_views_are_implicit_carts_and_transactions_explicit(retailrocket):
    flags = retailrocket.groupby("event", observed=True)["explicit"].agg(["min", "max"])
    assert flags.to_dict("index") == {
        "view": {"min": False, "max": False},
        "addtocart": {"min": True, "max": True},
        "transaction": {"min": True, "max": True},
    }


def test_retailrocket_exact_duplicate_rows_are_kept_and_counted(retailrocket):
    assert len(retailrocket) == 10
    assert retailrocket.attrs["load_report"]["exact_duplicates"] == 1


def test_retailrocket_extra_columns_are_ignored(retailrocket):
    assert "transactionid" not in retailrocket.columns and "datetime" not in retailrocket.columns


def test_retailrocket_latest_categoryid_wins_whatever_the_file(retailrocket):
    items = by_item(retailrocket)
    assert items.loc[355908, "category_id"] == 1338  # part1: 1173 then 1338; part2: an older 805
    assert items.loc[318965, "category_id"] == 1173  # part1: 1338; part2: a later 1173


def test_retailrocket_item_without_categoryid_gets_na(retailrocket):
    assert pd.isna(by_item(retailrocket).loc[248676, "category_id"])  # only an 'available' property
    assert retailrocket.attrs["load_report"]["events_without_category"] == 3


def test_retailrocket_top_category_is_the_root_of_the_tree(retailrocket):
    items = by_item(retailrocket)
    assert items.loc[253185, "top_category_id"] == 250  # 491 -> 250
    assert items.loc[318965, "top_category_id"] == 805  # 1173 -> 805
    assert items.loc[355908, "top_category_id"] == 250  # 1338 -> 250


def test_retailrocket_has_no_category_columns_without_property_files(tmp_path):
    shutil.copy(FIXTURES / "retailrocket" / "events.csv", tmp_path)
    assert list(load_retailrocket(tmp_path).columns) == [
        "user_id",
        "item_id",
        "timestamp",
        "event",
        "explicit",
    ]


def test_retailrocket_has_no_top_category_without_the_tree(tmp_path):
    folder = copy_fixture("retailrocket", tmp_path)
    (folder / "category_tree.csv").unlink()
    events = load_retailrocket(folder)
    assert "category_id" in events.columns and "top_category_id" not in events.columns


def test_retailrocket_missing_events_file_names_the_path_and_the_source(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        load_retailrocket(tmp_path)
    assert str(tmp_path / "events.csv") in str(error.value)
    assert "retailrocket/ecommerce-dataset" in str(error.value) and "data/README.md" in str(error.value)


def test_retailrocket_missing_column_is_named(tmp_path):
    folder = write_events(tmp_path, "timestamp,visitor,event,itemid\n1433221332117,1,view,2\n")
    with pytest.raises(DataError, match=r"events\.csv: missing column\(s\) \['visitorid'\]"):
        load_retailrocket(folder)


def test_retailrocket_unknown_event_is_named_with_its_row(tmp_path):
    folder = write_events(tmp_path, HEADER + "1433221332117,1,view,2,\n1433221332118,1,wishlist,2,\n")
    with pytest.raises(DataError, match=r"events\.csv: unknown event name.*wishlist.*data row 2"):
        load_retailrocket(folder)


def test_retailrocket_bad_id_is_named_with_its_column_and_row(tmp_path):
    folder = write_events(tmp_path, HEADER + "1433221332117,1,view,2,\n1433221332118,1,view,x9,\n")
    with pytest.raises(DataError, match=r"events\.csv: column 'itemid'.*data row 2: 'x9'"):
        load_retailrocket(folder)


def test_retailrocket_empty_id_is_named_with_its_row(tmp_path):
    folder = write_events(tmp_path, HEADER + "1433221332117,1,view,2,\n1433221332118,,view,2,\n1,1,view,2,\n")
    with pytest.raises(DataError, match=r"column 'visitorid'.*data row 2: ''"):
        load_retailrocket(folder)


def test_retailrocket_bad_timestamp_is_named_with_its_row(tmp_path):
    folder = write_events(tmp_path, HEADER + "1433221332117,1,view,2,\n2015-06-02,1,view,2,\n")
    with pytest.raises(DataError, match=r"events\.csv: column 'timestamp'.*timestamp at data row 2"):
        load_retailrocket(folder)


def test_retailrocket_row_with_too_many_fields_names_its_line(tmp_path):
    folder = write_events(tmp_path, HEADER + "1433221332117,1,view,2,\n1433221332118,1,view,2,,7\n")
    with pytest.raises(DataError, match=r"events\.csv: .*line 3"):
        load_retailrocket(folder)


def test_retailrocket_empty_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"events\.csv: the file is empty"):
        load_retailrocket(write_events(tmp_path, ""))


def test_retailrocket_header_only_file_has_no_events(tmp_path):
    with pytest.raises(DataError, match=r"events\.csv: no events found"):
        load_retailrocket(write_events(tmp_path, HEADER))


def test_retailrocket_bad_categoryid_names_its_row_in_the_property_file(tmp_path):
    folder = copy_fixture("retailrocket", tmp_path)
    (folder / "item_properties_part2.csv").write_text(
        "timestamp,itemid,property,value\n1,5,available,1\n1,5,790,n552.000\n1,5,categoryid,n12\n"
    )
    with pytest.raises(
        DataError, match=r"part2\.csv: column 'value \(property categoryid\)'.*data row 3: 'n12'"
    ):
        load_retailrocket(folder)


def test_category_tree_cycle_is_a_clear_error(tmp_path):
    folder = copy_fixture("retailrocket", tmp_path)
    (folder / "category_tree.csv").write_text("categoryid,parentid\n1338,250\n250,491\n491,250\n1173,\n")
    with pytest.raises(DataError, match=r"category_tree\.csv: category 1338 .*cycle"):
        load_retailrocket(folder)


def test_category_tree_unknown_parent_is_a_clear_error(tmp_path):
    folder = copy_fixture("retailrocket", tmp_path)
    (folder / "category_tree.csv").write_text("categoryid,parentid\n1338,250\n250,\n491,777\n")
    with pytest.raises(DataError, match=r"category_tree\.csv: column 'parentid' at data row 3.*777"):
        load_retailrocket(folder)


# ---------------------------------------------------------------------- Recobell
@pytest.fixture(scope="module")
def recobell() -> pd.DataFrame:
    return load_recobell(FIXTURES / "recobell")


def write_recobell(tmp_path: Path, views: str) -> Path:
    """A Recobell folder with the given view log and the fixture's order log."""
    shutil.copy(FIXTURES / "recobell" / "site_order_log.csv000", tmp_path)
    (tmp_path / "site_view_log.csv000").write_text(views)
    return tmp_path


def test_recobell_columns_have_the_canonical_dtypes(recobell):
    assert {c: str(t) for c, t in recobell.dtypes.items()} == CANONICAL_DTYPES


def test_recobell_hex_id_parses_to_its_exact_integer(recobell):
    assert recobell["user_id"].iloc[0] == 0x1DBE8CD  # "1dbe8cd"
    assert set(recobell["item_id"]) == {0xCCCDA36, 0x01196D7, 0xA0B1C2D}


def test_recobell_hex_ids_of_any_case_and_length_up_to_15_digits_are_exact(tmp_path):
    uids = ["ff", "0A", "fffffffffffffff", "1DBE8CD"]
    events = load_recobell(write_recobell(tmp_path, "".join(VIEW.format(uid=u) for u in uids)))
    views = events[events["event"] == "view"]
    assert sorted(views["user_id"]) == sorted([0xFF, 0x0A, 0xFFFFFFFFFFFFFFF, 0x1DBE8CD])


def test_recobell_server_time_keeps_its_milliseconds(recobell):
    assert pd.Timestamp("2016-09-29 10:59:21.694") in set(recobell["timestamp"])


def test_recobell_views_are_implicit_and_orders_explicit_one_event_per_row(recobell):
    assert recobell.groupby("event", observed=True)["explicit"].agg(["min", "max"]).to_dict("index") == {
        "view": {"min": False, "max": False},
        "order": {"min": True, "max": True},
    }
    assert recobell.attrs["load_report"]["events"] == {"view": 4, "order": 2}  # one order has quantity 2


def test_recobell_category_is_the_finest_non_empty_level_and_top_is_category1(recobell):
    items = by_item(recobell)
    assert items.loc[0xCCCDA36, ["category_id", "top_category_id"]].tolist() == [0x631746E, 0x256E556]
    assert items.loc[0x01196D7, ["category_id", "top_category_id"]].tolist() == [0xAEF1A1E, 0xC9DE0E0]


def test_recobell_item_missing_from_the_products_gets_na(recobell):
    assert by_item(recobell).loc[0xA0B1C2D, ["category_id", "top_category_id"]].isna().all()


def test_recobell_reads_the_distributed_small_gz_names(tmp_path):
    for name, distributed in [
        ("site_view_log.csv000", "site_view_log_small.csv000.gz"),
        ("site_order_log.csv000", "site_order_log_small.csv000.gz"),
        ("site_product_w_img.csv000", "site_product_w_img.csv000.gz"),
    ]:
        with gzip.open(tmp_path / distributed, "wb") as out:
            out.write((FIXTURES / "recobell" / name).read_bytes())
    events = load_recobell(tmp_path)
    assert len(events) == 6 and events["category_id"].notna().sum() == 4


def test_recobell_reads_site_product_without_the_image_column(tmp_path):
    folder = copy_fixture("recobell", tmp_path)
    products = pd.read_csv(
        folder / "site_product_w_img.csv000", header=None, dtype=str, keep_default_na=False
    )
    (folder / "site_product_w_img.csv000").unlink()
    products.drop(columns=1).to_csv(folder / "site_product.csv000", header=False, index=False, quoting=1)
    assert by_item(load_recobell(folder)).loc[0xCCCDA36, "category_id"] == 0x631746E


def test_recobell_exact_duplicate_rows_are_kept_and_counted(tmp_path):
    events = load_recobell(write_recobell(tmp_path, VIEW.format(uid="1dbe8cd") * 2))
    assert len(events) == 4 and events.attrs["load_report"]["exact_duplicates"] == 1


def test_recobell_missing_order_log_names_the_expected_files_and_the_source(tmp_path):
    shutil.copy(FIXTURES / "recobell" / "site_view_log.csv000", tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        load_recobell(tmp_path)
    message = str(error.value)
    assert str(tmp_path / "site_order_log.csv000") in message and "site_order_log_small.csv000.gz" in message
    assert "PAKDD 2017 Recobell" in message and "data/README.md" in message


def test_recobell_non_hex_id_is_named_with_its_file_column_and_row(tmp_path):
    folder = write_recobell(tmp_path, VIEW.format(uid="1dbe8cd") + VIEW.format(uid="1dbe8cz"))
    with pytest.raises(DataError, match=r"site_view_log\.csv000: column 'uid' at data row 2 is '1dbe8cz'"):
        load_recobell(folder)


def test_recobell_id_longer_than_15_digits_is_refused(tmp_path):
    folder = write_recobell(tmp_path, VIEW.format(uid="1" * 16))
    with pytest.raises(DataError, match=r"column 'uid' at data row 1 .*1 to 15 characters"):
        load_recobell(folder)


def test_recobell_bad_server_time_is_named_with_its_row(tmp_path):
    bad = VIEW.format(uid="1dbe8cd").replace("2016-09-29 10:59:21.694", "yesterday")
    folder = write_recobell(tmp_path, VIEW.format(uid="1dbe8cd") + bad)
    with pytest.raises(
        DataError, match=r"site_view_log\.csv000: column 'server_time'.*data row 2: 'yesterday'"
    ):
        load_recobell(folder)


def test_recobell_log_with_the_wrong_field_count_is_a_clear_error(tmp_path):
    folder = write_recobell(tmp_path, '"2016-09-29 10:59:21.694","MA","1dbe8cd","cccda36"\n')
    with pytest.raises(DataError, match=r"site_view_log\.csv000: 4 fields per row; expected 5"):
        load_recobell(folder)


def test_recobell_empty_log_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"site_view_log\.csv000: the file is empty"):
        load_recobell(write_recobell(tmp_path, ""))


# ---------------------------------------------------------------------- your own shop
SHOP_COLUMNS = {"user_id": "who", "item_id": "what", "timestamp": "when", "event": "kind"}


def load_shop(path: Path, **options) -> pd.DataFrame:
    options.setdefault("columns", SHOP_COLUMNS)
    return load_events(path, explicit_events=["buy"], implicit_events=["look"], **options)


def test_own_csv_with_integer_ids_keeps_them(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("who,what,when,kind\n7,70,2024-01-02 10:00,look\n3,30,2024-01-01 09:00,buy\n")
    events = load_shop(path)
    assert events[["user_id", "item_id"]].values.tolist() == [[3, 30], [7, 70]]
    assert events.attrs["id_maps"] == {}


def test_own_csv_with_string_ids_is_factorised_in_sorted_order(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("who,what,when,kind\nbob,tea,2024-01-02 10:00,look\nann,cup,2024-01-01 09:00,buy\n")
    events = load_shop(path)
    assert events[["user_id", "item_id"]].values.tolist() == [[0, 0], [1, 1]]
    assert events.attrs["id_maps"]["user_id"].tolist() == ["ann", "bob"]
    assert events.attrs["id_maps"]["item_id"].tolist() == ["cup", "tea"]
    assert events["explicit"].tolist() == [True, False]


def test_own_parquet_with_epoch_seconds(tmp_path):
    path = tmp_path / "shop.parquet"
    frame = {"who": [1, 1], "what": [5, 6], "when": [1_700_000_000, 1_700_000_060], "kind": ["look", "buy"]}
    pd.DataFrame(frame).to_parquet(path)
    events = load_shop(path, timestamp_unit="s")
    assert events["timestamp"].tolist() == [
        pd.Timestamp(1_700_000_000, unit="s"),
        pd.Timestamp(1_700_000_060, unit="s"),
    ]


def test_own_category_column_is_optional_and_may_be_missing(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("who,what,when,kind,cat\n1,5,2024-01-01,look,12\n1,6,2024-01-02,buy,\n")
    events = load_shop(path, columns={**SHOP_COLUMNS, "category_id": "cat"})
    assert events["category_id"].dtype == "Int64" and events["category_id"].tolist() == [12, pd.NA]


def test_own_events_unknown_mapping_key_is_refused(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("who,what,when,kind\n1,2,2024-01-01,look\n")
    message = r"shop\.csv: \[columns\] \(--columns\) has an unknown key 'user': did you mean user_id\?"
    with pytest.raises(DataError, match=message):
        load_shop(path, columns={**SHOP_COLUMNS, "user": "who"})


def test_own_events_mapped_column_missing_from_the_file_lists_the_columns(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("who,what,when,kind\n1,2,2024-01-01,look\n")
    with pytest.raises(
        DataError,
        match=r"user_id = 'customer' \(--columns user_id=customer\) is not a column of the file\. "
        r"The header line has 'who', 'what', 'when', 'kind'\.",
    ):
        load_shop(path, columns={**SHOP_COLUMNS, "user_id": "customer"})


def test_own_events_epoch_numbers_without_a_unit_are_refused(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text("who,what,when,kind\n1,2,1700000000,look\n")
    with pytest.raises(DataError, match=r"column 'when' holds numbers.*timestamp_unit = 's' \(--time-unit s"):
        load_shop(path)


def test_own_events_missing_file_names_its_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="shop.csv not found"):
        load_shop(tmp_path / "shop.csv")


# ---------------------------------------------------------------------- through load_dataset
def test_load_dataset_reads_retailrocket_from_the_given_folder():
    assert len(load_dataset("retailrocket", FIXTURES / "retailrocket")) == 10


def test_synthetic_shop_reads_back_through_the_retailrocket_loader(tmp_path):
    from_files = load_dataset("synthetic", tmp_path, scale="ci", seed=5)
    in_memory = generate_shop("ci", seed=5).canonical_events()
    pd.testing.assert_frame_equal(from_files, in_memory)


# ---------------------------------------------------------------------- real-format samples
@needs_realdata
def test_real_retailrocket_sample_matches_its_documented_counts(tmp_path):
    shutil.copy(REALDATA / "retailrocket" / "events_sample_5000visitors.csv", tmp_path / "events.csv")
    events = load_retailrocket(tmp_path)
    report = events.attrs["load_report"]
    assert report["rows"] == 9385 and report["exact_duplicates"] == 3
    assert report["events"] == {"addtocart": 263, "transaction": 46, "view": 9076}
    assert events["user_id"].nunique() == 5000 and events["item_id"].nunique() == 6610
    assert events["user_id"].max() == 1_407_175 and events["item_id"].max() == 466_772


@needs_realdata
def test_real_category_tree_maps_every_category_to_one_of_its_25_roots(tmp_path):
    shutil.copy(REALDATA / "retailrocket" / "events_sample_5000visitors.csv", tmp_path / "events.csv")
    shutil.copy(REALDATA / "retailrocket" / "category_tree.csv", tmp_path)
    tree = pd.read_csv(tmp_path / "category_tree.csv")
    items = np.sort(pd.read_csv(tmp_path / "events.csv")["itemid"].unique())[: len(tree)]
    properties = pd.DataFrame({"timestamp": 0, "itemid": items, "property": "categoryid"})
    properties["value"] = tree["categoryid"].to_numpy()[: len(items)]
    properties.to_csv(tmp_path / "item_properties_part1.csv", index=False)
    tops = load_retailrocket(tmp_path)["top_category_id"]
    roots = set(tree.loc[tree["parentid"].isna(), "categoryid"])
    assert len(roots) == 25 and tops.notna().any() and set(tops.dropna()) <= roots


@needs_realdata
def test_real_recobell_excerpts_match_their_documented_counts(tmp_path):
    for excerpt, name in [
        ("site_view_log_excerpt.csv", "site_view_log.csv000"),
        ("site_order_log_excerpt.csv", "site_order_log.csv000"),
        ("site_product_excerpt.csv", "site_product_w_img.csv000"),
    ]:
        shutil.copy(REALDATA / "recobell" / excerpt, tmp_path / name)
    events = load_recobell(tmp_path)
    assert events.attrs["load_report"]["events"] == {"view": 198, "order": 195}
    per_event = events.groupby("event", observed=True).agg(
        users=("user_id", "nunique"), items=("item_id", "nunique")
    )
    assert per_event.to_dict("index") == {
        "view": {"users": 66, "items": 159},
        "order": {"users": 162, "items": 154},
    }
    assert events["user_id"].nunique() == 66 + 162 - 16  # 16 uids are in both excerpts
    assert events["timestamp"].min() == pd.Timestamp("2016-09-15 08:52:55.878")


# ---------------------------------------------------------------------- time units
def test_retailrocket_file_written_in_seconds_is_refused_with_the_fix(tmp_path):
    folder = write_events(tmp_path, HEADER + "1433221332,1,view,2,\n1433221400,1,transaction,2,7\n")
    with pytest.raises(
        DataError, match=r"events\.csv: every timestamp falls outside 1990-2100 \(1970-01-17.*milliseconds"
    ):
        load_retailrocket(folder)


def test_recobell_times_in_1970_are_refused(tmp_path):
    old = VIEW.format(uid="1dbe8cd").replace("2016-09-29", "1970-01-17")
    shutil.copy(FIXTURES / "recobell" / "site_order_log.csv000", tmp_path)
    (tmp_path / "site_order_log.csv000").write_text(
        (tmp_path / "site_order_log.csv000").read_text().replace("2016-", "1970-")
    )
    (tmp_path / "site_view_log.csv000").write_text(old)
    with pytest.raises(DataError, match=r"every timestamp falls outside 1990-2100"):
        load_recobell(tmp_path)


def test_own_events_with_the_wrong_unit_are_refused_and_a_few_bad_times_warned(tmp_path):
    path = tmp_path / "shop.parquet"
    frame = {"who": [1, 1], "what": [5, 6], "when": [1_700_000_000, 1_700_000_060], "kind": ["look", "buy"]}
    pd.DataFrame(frame).to_parquet(path)
    with pytest.raises(DataError, match=r"shop\.parquet: every timestamp falls outside.*\(--time-unit s\)"):
        load_shop(path, timestamp_unit="ms")
    frame["when"] = [1_700_000_000, 60]  # one row in 1970
    pd.DataFrame(frame).to_parquet(path)
    with pytest.warns(UserWarning, match=r"1 of 2 timestamps fall outside 1990-2100 \(first at data row 2"):
        events = load_shop(path, timestamp_unit="s")
    assert len(events) == 2  # kept, not dropped


def test_the_synthetic_shop_lies_in_the_plausible_window(tmp_path):
    events = load_dataset("synthetic", tmp_path, scale="ci", seed=0)
    assert events["timestamp"].min() >= pd.Timestamp("1990-01-01")


# ---------------------------------------------------------------------- a shop's mapping file
TAOBAO = FIXTURES / "taobao" / "taobao.toml"


def test_taobao_layout_loads_through_its_mapping_file():
    events = load_dataset("events", TAOBAO)
    raw = pd.read_csv(FIXTURES / "taobao" / "UserBehavior.csv", header=None)
    kept = raw[raw[3] != "fav"]
    report = events.attrs["load_report"]
    assert report["ignored"] == {"fav": int((raw[3] == "fav").sum())} and report["rows"] == len(kept)
    assert report["events"] == kept[3].value_counts().to_dict()
    assert set(events.loc[events["explicit"], "event"]) == {"cart", "buy"}
    assert set(events["user_id"]) == set(kept[0])  # integer ids kept as they are
    first = events[events["user_id"] == 1].iloc[0]  # the header-less file's first row, epoch seconds
    assert (first["item_id"], first["category_id"]) == (3745169, 2891509)
    assert first["timestamp"] == pd.Timestamp(1511620839, unit="s")


def test_python_arguments_override_the_mapping_files_entries():
    as_implicit = load_dataset("events", TAOBAO, ignored_events=[], implicit_events=["pv", "fav"])
    assert "fav" in set(as_implicit["event"]) and as_implicit.attrs["load_report"]["ignored"] == {}


def write_mapping(tmp_path, text: str) -> Path:
    shutil.copy(FIXTURES / "taobao" / "UserBehavior.csv", tmp_path)
    path = tmp_path / "shop.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (('timestamp_unit = "s"', 'timestamp_unit = "sec"'), r"timestamp_unit 'sec' is not one of"),
        (("path = ", "file = "), r"unknown key 'file'"),
        (('ignored_events = ["fav"]', 'ignored_events = "fav"'), r"ignored_events must be a list"),
        (('ignored_events = ["fav"]', "ignored_events = []"), r"event names declared in no list: 'fav' \("),
        (('timestamp_unit = "s"', 'timestamp_unit = "ms"'), r"every timestamp falls outside 1990-2100"),
        (('event = "behavior_type"', 'event = "behaviour"'), r"event=behaviour\) is not a column"),
        (("[columns]", "[columns"), r"shop\.toml: not valid TOML"),
    ],
)
def test_a_bad_mapping_file_is_one_clear_error(tmp_path, change, message):
    path = write_mapping(tmp_path, TAOBAO.read_text().replace(*change))
    with pytest.raises(DataError, match=message):
        load_dataset("events", path)


def test_a_missing_mapping_file_names_its_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="shop.toml not found"):
        load_dataset("events", tmp_path / "shop.toml")
