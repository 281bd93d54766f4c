"""The evaluation protocol of the paper, made precise (see DESIGN.md "The evaluation protocol").

* Test target: each user's LAST explicit event. Validation target: the explicit event before it
  (users with >= 2 explicit events). Users without an explicit event only train.
* Nothing after a user's test target is kept. Training events are those strictly before the
  user's earliest held-out target (all events for train-only users).
* Model input at prediction time: the user id and the last L items before the target.
* Candidates: the target + `n_negatives` items drawn uniformly, without replacement, from the
  items the user never interacted with (up to the test target), once, from a seed. With
  `negatives="unbought"` the negatives may include items the user viewed but did not buy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from .data.preprocess import PADDING_ITEM, Interactions
from .data.schema import DataError

NEGATIVE_MODES = ("never_interacted", "unbought")


@dataclass
class Targets:
    """Held-out targets of one kind (validation or test), one row per user.

    user int64[n], item int64[n], row int64[n] (the target's row in `Split.events`),
    candidates int64[n, 1 + n_negatives] (column 0 is the target).
    """

    user: np.ndarray
    item: np.ndarray
    row: np.ndarray
    candidates: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


@dataclass
class Split:
    """A leave-one-out split: events up to each test target, training events, targets."""

    data: Interactions
    kept_rows: np.ndarray  # int64: rows of data.events up to and including each user's test target
    is_train: np.ndarray  # bool[len(kept_rows)]: usable for training
    valid: Targets
    test: Targets
    negatives: str
    seed: int

    @cached_property
    def events(self) -> pd.DataFrame:
        """Every kept event, re-indexed 0..n-1 (target rows index into this frame)."""
        return self.data.events.iloc[self.kept_rows].reset_index(drop=True)

    @property
    def train(self) -> pd.DataFrame:
        """Training events (strictly before each user's earliest held-out target)."""
        return self.events[self.is_train]

    @property
    def n_users(self) -> int:
        return self.data.n_users

    @property
    def n_items(self) -> int:
        return self.data.n_items

    def targets(self, which: str) -> Targets:
        if which not in ("valid", "test"):
            raise ValueError(f"which must be 'valid' or 'test', got {which!r}.")
        return self.valid if which == "valid" else self.test

    def sequences(self, which: str, length: int, same_session: bool = False) -> np.ndarray:
        """The last `length` items before each target: int64[n, length], left-padded with 0.

        same_session=True keeps only items of the target's own session (session-based models).
        """
        return last_items(self.events, self.targets(which).row, length, same_session)

    def excluded_items(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """Items that are not negatives for each target (CSR: ptr int64[n + 1], items int64[nnz]).

        For full ranking: every item outside this set (and not the target) is a negative.
        """
        targets = self.targets(which)
        user_of = self.events["user"].to_numpy()
        keep = np.isin(user_of, targets.user)
        if self.negatives == "unbought":
            keep &= self.events["explicit"].to_numpy()
        pairs = np.unique(user_of[keep] * (self.n_items + 1) + self.events["item"].to_numpy()[keep])
        pair_user, pair_item = np.divmod(pairs, self.n_items + 1)
        order = np.argsort(targets.user)
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        row_of_pair = position[np.searchsorted(targets.user[order], pair_user)]
        by_row = np.lexsort((pair_item, row_of_pair))
        ptr = np.r_[0, np.cumsum(np.bincount(row_of_pair, minlength=len(targets)))]
        return ptr, pair_item[by_row]

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | Path) -> Path:
        """Store the split (events as Parquet, arrays as .npz) so every model sees the same one."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.data.events.to_parquet(out / "interactions.parquet", index=False)
        arrays = {
            f"{kind}_{name}": getattr(self.targets(kind), name)
            for kind in ("valid", "test")
            for name in ("user", "item", "row", "candidates")
        }
        np.savez_compressed(
            out / "split.npz",
            user_ids=self.data.user_ids,
            item_ids=self.data.item_ids,
            kept=self.kept_rows,
            is_train=self.is_train,
            **arrays,
        )
        (out / "split.json").write_text(
            json.dumps({"negatives": self.negatives, "seed": self.seed, "report": self.data.report})
        )
        return out

    @classmethod
    def load(cls, directory: str | Path) -> Split:
        """Read a split written by `save`."""
        src = Path(directory)
        if not (src / "split.npz").exists():
            raise FileNotFoundError(
                f"no saved split in {src} (expected split.npz); create it with Split.save."
            )
        meta = json.loads((src / "split.json").read_text())
        with np.load(src / "split.npz") as z:
            arrays = {name: z[name] for name in z.files}
        data = Interactions(
            pd.read_parquet(src / "interactions.parquet"),
            arrays["user_ids"],
            arrays["item_ids"],
            meta["report"],
        )
        targets = {
            kind: Targets(*(arrays[f"{kind}_{n}"] for n in ("user", "item", "row", "candidates")))
            for kind in ("valid", "test")
        }
        return cls(
            data,
            arrays["kept"],
            arrays["is_train"],
            targets["valid"],
            targets["test"],
            meta["negatives"],
            meta["seed"],
        )


def last_items(events: pd.DataFrame, rows: np.ndarray, length: int, same_session: bool = False) -> np.ndarray:
    """Items of the `length` events before each row, same user (and session if asked).

    -> int64[n, length], left-padded with PADDING_ITEM (0).
    """
    if length < 1:
        raise ValueError(f"sequence length must be >= 1, got {length}.")
    items = events["item"].to_numpy()
    group = events["session" if same_session else "user"].to_numpy()
    rows = np.asarray(rows, dtype=np.int64)
    index = rows[:, None] - np.arange(length, 0, -1)[None, :]
    valid = index >= 0
    index = np.maximum(index, 0)
    valid &= group[index] == group[rows][:, None]
    return np.where(valid, items[index], PADDING_ITEM)


def leave_one_out(
    data: Interactions,
    *,
    n_negatives: int = 999,
    negatives: str = "never_interacted",
    seed: int = 0,
) -> Split:
    """Split `data` by the protocol above and draw the fixed candidate sets."""
    if negatives not in NEGATIVE_MODES:
        raise ValueError(f"negatives must be one of {NEGATIVE_MODES}, got {negatives!r}.")
    if n_negatives < 1:
        raise ValueError(f"n_negatives must be >= 1, got {n_negatives}.")
    events = data.events
    users = events["user"].to_numpy()
    explicit = events["explicit"].to_numpy()
    rows = np.arange(len(events))

    explicit_rows = rows[explicit]
    if len(explicit_rows) == 0:
        raise DataError("no explicit events (e.g. purchases) after filtering: there is nothing to hold out.")
    explicit_users = users[explicit_rows]
    last = np.r_[explicit_users[1:] != explicit_users[:-1], True]
    test_rows = explicit_rows[last]
    before_last = np.r_[last[1:], False] & ~last
    second = before_last & np.r_[explicit_users[1:] == explicit_users[:-1], False]
    valid_rows = explicit_rows[second]

    user_start = np.searchsorted(users, np.arange(data.n_users))
    user_end = np.r_[user_start[1:], len(users)]
    cut = user_end.copy()  # exclusive end of kept events per user
    cut[users[test_rows]] = test_rows + 1
    first_target = np.full(data.n_users, np.iinfo(np.int64).max)
    first_target[users[test_rows]] = test_rows
    first_target[users[valid_rows]] = valid_rows
    kept = rows < cut[users]
    is_train = rows < np.minimum(first_target, cut)[users]

    new_row = np.cumsum(kept) - 1

    rng = np.random.default_rng(seed)
    exclude_mask = kept & (explicit if negatives == "unbought" else True)
    excluded = np.unique(users[exclude_mask] * (data.n_items + 1) + events["item"].to_numpy()[exclude_mask])
    item = events["item"].to_numpy()
    made = {}
    for kind, target_rows in (("valid", valid_rows), ("test", test_rows)):
        negs = sample_negatives(users[target_rows], excluded, data.n_items, n_negatives, rng)
        made[kind] = Targets(
            user=users[target_rows],
            item=item[target_rows],
            row=new_row[target_rows],
            candidates=np.column_stack([item[target_rows], negs]),
        )
    return Split(data, rows[kept], is_train[kept], made["valid"], made["test"], negatives, seed)


def sample_negatives(
    users: np.ndarray, excluded_pairs: np.ndarray, n_items: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    """`n` distinct items per user drawn uniformly from 1..n_items minus the user's excluded items.

    excluded_pairs: sorted int64 keys user * (n_items + 1) + item. Returns int64[len(users), n].
    Vectorised rejection sampling: oversample, drop excluded and repeated draws, redraw the rare
    rows that came up short.
    """
    users = np.asarray(users, dtype=np.int64)
    out = np.zeros((len(users), n), dtype=np.int64)
    if len(users) == 0:
        return out
    n_excluded = np.bincount(excluded_pairs // (n_items + 1), minlength=users.max() + 1)[users]
    short = n_items - n_excluded < n
    if short.any():
        raise DataError(
            f"cannot draw {n} negatives for {int(short.sum())} user(s): only {n_items} items exist and "
            f"user {int(users[short][0])} interacted with {int(n_excluded[short][0])}. Lower n_negatives."
        )
    available = n_items - n_excluded
    dense = n > 0.5 * available  # small catalogues: draw from the explicit complement
    for i in np.flatnonzero(dense):  # a loop over the few users of a small catalogue only
        mine = excluded_pairs[np.searchsorted(excluded_pairs, users[i] * (n_items + 1)) :]
        mine = mine[mine < (users[i] + 1) * (n_items + 1)] - users[i] * (n_items + 1)
        out[i] = rng.choice(np.setdiff1d(np.arange(1, n_items + 1), mine), size=n, replace=False)
    todo = np.flatnonzero(~dense)
    while len(todo):
        # Enough draws that the expected number of distinct allowed items exceeds n by 10%.
        share = 1.1 * n / available[todo].min()
        draws = int(np.ceil(-n_items * np.log1p(-min(share, 0.9)))) + 32
        cand = rng.integers(1, n_items + 1, size=(len(todo), draws))
        keys = users[todo][:, None] * (n_items + 1) + cand
        found = excluded_pairs[np.minimum(np.searchsorted(excluded_pairs, keys), len(excluded_pairs) - 1)]
        bad = found == keys if len(excluded_pairs) else np.zeros(keys.shape, dtype=bool)
        ordered = np.sort(np.where(bad, 0, cand), axis=1)
        first = np.ones_like(bad)
        first[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
        distinct = first & (ordered > 0)
        # A uniformly random subset of the distinct allowed draws: random keys, the rest last.
        order_keys = np.where(distinct, rng.random(distinct.shape), 2.0)
        pick = np.argsort(order_keys, axis=1)[:, :n]
        done = distinct.sum(axis=1) >= n
        out[todo[done]] = np.take_along_axis(ordered, pick, axis=1)[done]
        todo = todo[~done]
    return out
