"""An own shop's log (`--dataset events`): its times end up in UTC without a warning, and every bad
input is one line naming the file, the data row, the mapping key with its flag, and the fix, in plain
words and numbers (no NumPy repr, no pandas internals, no RetailRocket, no Python call syntax)."""

import warnings
from pathlib import Path

import pandas as pd
import pytest

from recsys_helpers.cli import OWN_SHOP_FLAGS, main
from recsys_helpers.data import DataError, load_dataset
from recsys_helpers.data.loaders import load_events
from recsys_helpers.data.mapping import FLAGS

MAPPING = """path = "shop.csv"
implicit_events = ["look"]
explicit_events = ["buy"]
{extra}
[columns]
user_id = "who"
item_id = "what"
timestamp = "when"
event = "kind"
"""
HEADER = "who,what,when,kind\n"


def log(stamp: str = "2024-01-0{day} 10:00", users=(1, 2, 3)) -> str:
    """Five events per user (three looks, then two buys) on days 1..5: enough for the protocol."""
    return HEADER + "".join(
        f"{user},{user + day},{stamp.format(day=day)},{'buy' if day > 3 else 'look'}\n"
        for user in users
        for day in range(1, 6)
    )


def write_shop(tmp_path: Path, text: str, extra: str = "") -> Path:
    """shop.csv holding `text` and the mapping shop.toml (plus the `extra` TOML lines)."""
    (tmp_path / "shop.csv").write_text(text)
    mapping = tmp_path / "shop.toml"
    mapping.write_text(MAPPING.format(extra=extra))
    return mapping


def load(tmp_path: Path, text: str, extra: str = "") -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_dataset("events", write_shop(tmp_path, text, extra))


def error(tmp_path: Path, text: str, extra: str = "") -> str:
    """The message of the error that loading the shop raises: one line, no NumPy repr."""
    with pytest.raises((DataError, FileNotFoundError)) as raised:
        load(tmp_path, text, extra)
    message = str(raised.value)
    assert "\n" not in message and "np." not in message
    return message


def times(events: pd.DataFrame) -> list[str]:
    return events.sort_values(["user_id", "timestamp"])["timestamp"].astype(str).tolist()


# ---------------------------------------------------------------------- times and zones
def test_iso_times_with_a_utc_suffix_load_as_those_instants_without_a_warning(tmp_path):
    events = load(tmp_path, log("2019-10-0{day} 00:00:00 UTC", users=[1]))
    assert events["timestamp"].dtype == "datetime64[ms]"
    assert times(events) == [f"2019-10-0{day}" for day in range(1, 6)]


def test_iso_times_with_offsets_are_converted_to_utc_whatever_the_offset(tmp_path):
    text = HEADER + "1,1,2019-10-01T12:00:00+02:00,look\n1,2,2019-12-01T12:00:00+01:00,buy\n"
    assert times(load(tmp_path, text)) == ["2019-10-01 10:00:00", "2019-12-01 11:00:00"]


def test_zone_less_text_is_utc_by_default(tmp_path):
    text = HEADER + "1,1,2019-10-01 12:00,look\n1,2,2019-12-01 12:00,buy\n"
    assert times(load(tmp_path, text)) == ["2019-10-01 12:00:00", "2019-12-01 12:00:00"]


def test_zone_less_text_is_read_in_the_mappings_timezone(tmp_path):
    text = HEADER + "1,1,2019-10-01 12:00,look\n1,2,2019-12-01 12:00,buy\n"
    events = load(tmp_path, text, 'timezone = "Europe/Berlin"')
    assert times(events) == ["2019-10-01 10:00:00", "2019-12-01 11:00:00"]  # summer, then winter time


def test_a_local_time_that_occurs_twice_is_its_first_occurrence_and_counted(tmp_path):
    text = HEADER + "1,1,2019-10-27 02:30,look\n1,2,2019-10-27 04:00,buy\n"  # Berlin: 02:30 occurs twice
    events = load(tmp_path, text, 'timezone = "Europe/Berlin"')
    assert times(events) == ["2019-10-27 00:30:00", "2019-10-27 03:00:00"]
    assert events.attrs["load_report"]["ambiguous_local_times"] == 1


def test_a_local_time_the_clocks_skip_is_refused_with_its_row(tmp_path):
    text = HEADER + "1,1,2019-03-30 12:00,look\n1,2,2019-03-31 02:30,buy\n"  # Berlin skips 02:00-03:00
    message = error(tmp_path, text, 'timezone = "Europe/Berlin"')
    assert "2019-03-31 02:30:00 at data row 2, a time that does not exist in Europe/Berlin" in message


def test_text_mixing_times_with_and_without_a_zone_is_refused(tmp_path):
    text = HEADER + "1,1,2019-10-01 12:00 UTC,look\n1,2,2019-10-02 12:00,buy\n"
    message = error(tmp_path, text)
    assert "mixes times with a zone ('2019-10-01 12:00 UTC' at data row 1)" in message
    assert "without ('2019-10-02 12:00' at data row 2)" in message


def test_day_first_or_month_first_text_is_refused_rather_than_guessed(tmp_path):
    message = error(tmp_path, HEADER + "1,1,13/01/2024 10:00,look\n1,2,01/02/2024 10:00,buy\n")
    assert "'13/01/2024 10:00' at data row 1, not an ISO 8601 date-time" in message
    assert "timestamp_unit (--time-unit)" in message


def test_an_unknown_timezone_names_the_key(tmp_path):
    message = error(tmp_path, log(), 'timezone = "Mars/Olympus"')
    assert "shop.toml: timezone 'Mars/Olympus' is not a time zone name" in message


def test_timestamps_out_of_order_are_sorted_without_a_warning(tmp_path):
    in_order = load(tmp_path, log())
    header, *rows = log().splitlines(keepends=True)
    shuffled = load(tmp_path, header + "".join(reversed(rows)))
    pd.testing.assert_frame_equal(shuffled.drop(columns="event"), in_order.drop(columns="event"))
    assert shuffled["event"].tolist() == in_order["event"].tolist()


# ---------------------------------------------------------------------- time units
def test_epoch_numbers_without_a_unit_name_the_key_the_flag_and_every_choice(tmp_path):
    message = error(tmp_path, HEADER + "1,1,1700000000,look\n1,2,1700000060,buy\n")
    assert "column 'when' holds numbers" in message
    assert "timestamp_unit = 's' (--time-unit s): they look like epoch seconds" in message
    assert "s (epoch seconds), ms (epoch milliseconds) or iso (ISO 8601 date-time text)" in message


def test_a_wrong_epoch_unit_speaks_of_the_key_and_flag_not_of_retailrocket(tmp_path):
    message = error(tmp_path, HEADER + "1,1,1700000000,look\n1,2,1700000060,buy\n", 'timestamp_unit = "ms"')
    assert "shop.csv: every timestamp falls outside 1990-2100" in message
    assert "if it holds epoch seconds, set timestamp_unit = 's' (--time-unit s)" in message
    assert "RetailRocket" not in message and "load_dataset" not in message and "='" not in message


def test_python_callers_may_name_the_text_unit_iso_and_get_the_same_choices(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text(HEADER + "1,1,2019-10-01 12:00,look\n1,2,2019-10-02 12:00,buy\n")
    columns = {"user_id": "who", "item_id": "what", "timestamp": "when", "event": "kind"}
    events = load_events(
        path, columns=columns, implicit_events=["look"], explicit_events=["buy"], timestamp_unit="iso"
    )
    assert times(events) == ["2019-10-01 12:00:00", "2019-10-02 12:00:00"]
    with pytest.raises(DataError, match=r"timestamp_unit 'sec' is not one of s \(epoch seconds\), ms"):
        load_events(
            path, columns=columns, implicit_events=["look"], explicit_events=["buy"], timestamp_unit="sec"
        )


def test_date_time_text_read_as_epoch_numbers_names_the_iso_unit(tmp_path):
    message = error(tmp_path, log(), 'timestamp_unit = "s"')
    assert "timestamp_unit = 'iso' (--time-unit iso)" in message


# ---------------------------------------------------------------------- event names
def test_undeclared_event_names_are_counted_in_plain_numbers_with_both_fixes(tmp_path):
    text = log().replace("look\n", "fav\n", 2)
    message = error(tmp_path, text)
    assert "column 'kind' has event names declared in no list: 'fav' (2 rows, first at data row 1)" in message
    assert "implicit_events (--implicit)" in message and "explicit_events (--explicit)" in message
    assert "ignored_events (--ignore)" in message


def test_an_empty_event_name_is_refused_with_its_row(tmp_path):
    message = error(tmp_path, log().replace(",look\n", ",\n", 1))
    assert "column 'kind' has no event name at data row 1 (1 row in all)" in message


def test_an_event_listed_twice_is_refused(tmp_path):
    message = error(tmp_path, log(), 'ignored_events = ["buy"]')
    assert "'buy' is listed in both explicit_events (--explicit) and ignored_events (--ignore)" in message


def test_a_file_whose_every_event_is_ignored_is_refused(tmp_path):
    text = log().replace("look", "pv").replace("buy", "fav")
    message = error(tmp_path, text, 'ignored_events = ["pv", "fav"]')
    assert "every row's event is ignored: 'pv' (9 rows, first at data row 1), 'fav' (6 rows" in message
    assert "ignored_events (--ignore)" in message


def test_rows_are_counted_in_the_file_even_after_ignored_rows(tmp_path):
    text = HEADER + "1,1,2024-01-01,fav\n1,2,2024-01-02,fav\n1,3,yesterday,look\n"
    message = error(tmp_path, text, 'ignored_events = ["fav"]')
    assert "'yesterday' at data row 3" in message


# ---------------------------------------------------------------------- columns and ids
def test_a_header_that_differs_only_in_case_suggests_the_right_name(tmp_path):
    message = error(tmp_path, log().replace("who,", "Who,", 1))
    assert "user_id = 'who' is not a column of the file, but 'Who' is" in message
    assert "set [columns] user_id = 'Who' (--columns user_id=Who,...)" in message


def test_a_mapped_column_named_twice_in_the_header_is_refused(tmp_path):
    message = error(tmp_path, "who,what,when,kind,who\n1,2,2024-01-01,look,3\n")
    assert "the header line has 2 columns named 'who' (columns 1 and 5)" in message


def test_integer_ids_with_a_text_value_among_them_are_refused_as_a_typo(tmp_path):
    message = error(tmp_path, log().replace("\n2,", "\n2x,", 1))
    assert "column 'who' holds integer ids, but data row 6 has '2x' (1 such row in all)" in message


def test_text_ids_of_which_some_look_like_integers_stay_text_ids(tmp_path):
    text = HEADER + "a1f,1,2024-01-01,look\n123,1,2024-01-02,buy\nb7,2,2024-01-03,look\n"
    assert load(tmp_path, text).attrs["id_maps"]["user_id"].tolist() == ["123", "a1f", "b7"]


def test_a_non_integer_number_id_is_shown_as_written(tmp_path):
    message = error(tmp_path, log().replace("\n2,", "\n2.5,", 1))
    assert "column 'who' has a value that is not an integer id at data row 6: 2.5." in message


def test_a_header_line_in_a_file_said_to_have_none_is_refused(tmp_path):
    message = error(tmp_path, log(), 'names = ["who", "what", "when", "kind"]')
    assert "the first line is a header line (who, what, when, kind), yet names (--names)" in message


# ---------------------------------------------------------------------- the mapping file
def test_a_misspelled_mapping_key_suggests_the_right_one_and_its_flag(tmp_path):
    message = error(tmp_path, log(), 'implicit_event = ["look"]')
    assert "shop.toml: unknown key 'implicit_event': did you mean implicit_events (--implicit)?" in message


def test_an_unknown_mapping_key_is_named(tmp_path):
    message = error(tmp_path, log(), 'shop_name = "Tea & Cups"')
    assert "unknown key 'shop_name': remove it." in message and "timezone" in message


def test_a_key_written_below_the_columns_table_is_pointed_out(tmp_path):
    path = write_shop(tmp_path, log())
    path.write_text(path.read_text() + 'ignored_events = ["fav"]\n')
    with pytest.raises(DataError, match=r"ignored_events is inside \[columns\].*move it above \[columns\]"):
        load_dataset("events", path)


def test_the_messages_name_the_flags_the_command_line_has():
    assert FLAGS == {key: f"--{flag.replace('_', '-')}" for flag, key in OWN_SHOP_FLAGS.items()}


# ---------------------------------------------------------------------- the command line
def stats(mapping: Path, *extra: str) -> list[str]:
    return ["stats", "--dataset", "events", "--mapping", str(mapping), *extra]


def test_stats_of_an_own_shop_prints_no_paper_column(tmp_path, capsys):
    assert main(stats(write_shop(tmp_path, log()))) == 0
    out = capsys.readouterr().out
    assert "ours" in out and "paper" not in out and "36,751" not in out


def test_stats_of_zoned_times_prints_no_warning(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert main(stats(write_shop(tmp_path, log("2019-10-0{day} 00:00:00 UTC")))) == 0
    assert capsys.readouterr().err == ""


IGNORE_ALL = 'ignored_events = ["pv", "fav"]'
BAD_INPUTS = {  # name: (the events file, extra mapping lines, a phrase of the message)
    "missing file": (None, "", "shop.csv not found: set path (--events)"),
    "column named twice": ("who,what,when,kind,who\n1,2,2024-01-01,look,3\n", "", "2 columns named 'who'"),
    "header case": (log().replace("who,", "WHO,", 1), "", "but 'WHO' is (names are case-sensitive)"),
    "empty event name": (log().replace(",look\n", ",\n", 1), "", "no event name at data row 1"),
    "undeclared event": (log().replace("look\n", "fav\n", 1), "", "'fav' (1 row, first at data row 1)"),
    "empty user id": (log().replace("\n2,", "\n,", 1), "", "data row 6: ''"),
    "text user id": (log().replace("\n2,", "\n2x,", 1), "", "data row 6 has '2x'"),
    "misspelled key": (log(), 'implicit_event = ["look"]', "did you mean implicit_events (--implicit)?"),
    "unknown key": (log(), 'shop_name = "x"', "unknown key 'shop_name'"),
    "empty file": ("", "", "shop.csv: the file is empty"),
    "header only": (HEADER, "", "has a header line but no rows"),
    "every event ignored": (log().replace("look", "pv"), 'ignored_events = ["pv", "buy"]', "listed in both"),
    "every row ignored": (log().replace("look", "pv").replace("buy", "fav"), IGNORE_ALL, "every row's"),
    "epoch numbers without a unit": (HEADER + "1,1,1700000000,look\n", "", "(--time-unit s)"),
    "epoch seconds read as ms": (log("170000000{day}"), 'timestamp_unit = "ms"', "(--time-unit s)"),
    "zone and no zone": (log().replace("2024-01-01 10:00", "2024-01-01 10:00Z"), "", "mixes times"),
    "unknown time zone": (log(), 'timezone = "Mars/Olympus"', "not a time zone name"),
    "a row with an extra field": (log().replace("\n2,", "\n2,9,", 1), "", "Expected 4 fields in line 7"),
}


@pytest.mark.parametrize("text, extra, phrase", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_stats_on_a_bad_own_shop_is_one_plain_line_and_exit_code_2(tmp_path, capsys, text, extra, phrase):
    mapping = write_shop(tmp_path, text or "", extra)
    if text is None:
        (tmp_path / "shop.csv").unlink()
    assert main(stats(mapping)) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith("error: ")
    assert phrase in captured.err
    assert "np." not in captured.err and "Traceback" not in captured.err and "pandas" not in captured.err
