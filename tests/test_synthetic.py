import numpy as np
import pandas as pd
import pytest

from recsys_helpers.data import PRESETS, ShopConfig, SyntheticShop, generate_shop
from recsys_helpers.data.synthetic import _categorical_rows


@pytest.fixture(scope="module")
def shop() -> SyntheticShop:
    return generate_shop("ci", seed=3)


def test_same_seed_same_shop_other_seed_other_shop(shop):
    pd.testing.assert_frame_equal(generate_shop("ci", seed=3).events, shop.events)
    assert not generate_shop("ci", seed=4).events.equals(shop.events)


def test_events_use_the_retailrocket_schema(shop):
    assert list(shop.events.columns) == ["timestamp", "visitorid", "event", "itemid", "transactionid"]
    assert set(shop.events["event"]) == {"view", "addtocart", "transaction"}
    has_tx = shop.events["transactionid"].notna()
    assert (has_tx == shop.events["event"].eq("transaction")).all()


def test_events_span_the_retailrocket_window(shop):
    time = pd.to_datetime(shop.events["timestamp"], unit="ms")
    assert time.min() >= pd.Timestamp("2015-05-03") and time.max() < pd.Timestamp("2015-09-19")


def test_every_transaction_follows_a_cart_of_the_same_item(shop):
    ev = shop.events
    carts = set(zip(ev.visitorid[ev.event == "addtocart"], ev.itemid[ev.event == "addtocart"], strict=True))
    txs = set(zip(ev.visitorid[ev.event == "transaction"], ev.itemid[ev.event == "transaction"], strict=True))
    assert txs and txs <= carts


def test_oracle_probabilities_sum_to_one_over_the_catalogue(shop):
    non_checkout = np.isnat(shop.checkout_time)
    decision = np.flatnonzero(non_checkout)[:20]
    users = shop.user_raw[shop.session_user[shop.decision_session[decision]]]
    everything = np.broadcast_to(shop.item_raw, (len(decision), len(shop.item_raw)))
    p = shop.oracle_scores(users, shop.decision_time[decision], everything)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-9)


def test_oracle_puts_the_carted_item_first_for_a_transaction(shop):
    checkout = np.flatnonzero(~np.isnat(shop.checkout_time))[:10]
    users = shop.user_raw[shop.session_user[shop.decision_session[checkout]]]
    candidates = np.column_stack(
        [shop.item_raw[shop.decision_item[checkout]], shop.item_raw[:50][None, :].repeat(10, 0)]
    )
    p = shop.oracle_scores(users, shop.checkout_time[checkout], candidates)
    other = candidates[:, 1:] != candidates[:, :1]
    assert (p[:, 0] >= 1.0).all()
    assert (p[:, 1:][other] < 1.0).all()


def test_oracle_refuses_a_time_that_is_not_an_explicit_event(shop):
    with pytest.raises(ValueError, match="not explicit events"):
        shop.oracle_scores(
            shop.user_raw[:1], np.array(["2015-01-01"], dtype="datetime64[ms]"), shop.item_raw[None, :3]
        )


def test_purchases_follow_the_planted_mixture(shop):
    # Each bought item is a viewed item, the complement of the last view, or from a category.
    viewed = np.zeros(len(shop.decision_session), dtype=bool)
    for k, session in enumerate(shop.decision_session):
        viewed[k] = (
            shop.decision_item[k] in shop.view_item[shop.view_ptr[session] : shop.view_ptr[session + 1]]
        )
    share = viewed.mean()
    assert shop.config.w_viewed - 0.1 < share < shop.config.w_viewed + 0.25


def test_views_follow_item_chains_at_the_configured_rate(shop):
    same_session = np.ones(len(shop.view_item) - 1, dtype=bool)
    same_session[shop.view_ptr[1:-1] - 1] = False
    follows = shop.item_next[shop.view_item[:-1]] == shop.view_item[1:]
    assert abs(follows[same_session].mean() - shop.config.p_chain) < 0.06


def test_interest_shift_users_are_flagged_and_their_late_sessions_change_taste(shop):
    shifted = shop.interest_shift_users
    assert 0.1 * len(shop.user_raw) < len(shifted) < 0.4 * len(shop.user_raw)
    index = np.flatnonzero(~np.isnat(shop.shift_time))
    focus_before = shop.taste[index].argmax(axis=1)
    focus_after = shop.shifted_taste[index].argmax(axis=1)
    assert (focus_before != focus_after).mean() > 0.9


def test_knob_p_buy_controls_the_number_of_purchases():
    few = generate_shop("ci", seed=0, p_buy=0.1).events["event"].eq("addtocart").sum()
    many = generate_shop("ci", seed=0, p_buy=0.6).events["event"].eq("addtocart").sum()
    assert many > 4 * few


def test_bad_knobs_are_refused():
    with pytest.raises(ValueError, match="sum to 1"):
        ShopConfig(w_viewed=0.9)
    with pytest.raises(ValueError, match="p_buy"):
        ShopConfig(p_buy=1.5)
    with pytest.raises(ValueError, match="unknown synthetic scale"):
        generate_shop("huge")


def test_write_and_read_round_trip(shop, tmp_path):
    back = SyntheticShop.read(shop.write(tmp_path / "shop"))
    assert back.config == shop.config and back.seed == shop.seed
    np.testing.assert_array_equal(back.item_next, shop.item_next)
    np.testing.assert_array_equal(back.shift_time, shop.shift_time)
    assert len(back.events) == len(shop.events)
    assert (tmp_path / "shop" / "item_properties_part1.csv").exists()


def test_presets_exist():
    assert {"ci", "course", "retailrocket", "recobell"} <= set(PRESETS)


def test_categorical_rows_drawn_in_chunks_equal_one_pass_and_follow_the_weights():
    weights = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 2.0]])
    rows = np.tile(np.arange(3), 2_000)
    draw = lambda chunk: _categorical_rows(  # noqa: E731
        np.random.default_rng(0), lambda r: weights[rows[r]], len(rows), chunk=chunk
    )
    drawn = draw(7)
    np.testing.assert_array_equal(drawn, draw(len(rows)))
    assert np.all(drawn[rows == 0] == 0) and np.all(drawn[rows == 1] == 2)
    shares = np.bincount(drawn[rows == 2], minlength=3) / 2_000
    np.testing.assert_allclose(shares, [0.25, 0.25, 0.5], atol=0.04)
