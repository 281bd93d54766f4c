"""Tiny hand-written event logs for the tests."""

import numpy as np
import pandas as pd

from recsys_helpers.data.schema import finalize_events

T0 = np.datetime64("2015-06-01T00:00:00", "ms")


def make_events(rows: list[tuple[int, int, float, str]]) -> pd.DataFrame:
    """rows of (user_id, item_id, minute, event) -> canonical frame (view implicit; cart and buy
    explicit, buy a purchase)."""
    user, item, minute, event = zip(*rows, strict=True)
    frame = pd.DataFrame(
        {
            "user_id": np.array(user, dtype=np.int64),
            "item_id": np.array(item, dtype=np.int64),
            "timestamp": T0 + (np.array(minute) * 60_000).astype("timedelta64[ms]"),
            "event": list(event),
        }
    )
    return finalize_events(frame, explicit_events=["cart", "buy"], implicit_events=["view"], source="test")


def synthetic_split(scale: str = "ci", seed: int = 0, n_negatives: int = 99, **knobs):
    """(shop, data, split) of a small synthetic shop, built in memory."""
    from recsys_helpers.data import generate_shop, preprocess
    from recsys_helpers.protocol import leave_one_out

    shop = generate_shop(scale, seed=seed, **knobs)
    data = preprocess(shop.canonical_events())
    return shop, data, leave_one_out(data, n_negatives=n_negatives, seed=seed)
