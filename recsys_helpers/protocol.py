"""The evaluation protocol of the paper, made precise (DESIGN.md "The evaluation protocol", v2).

* **Targets are explicit interactions** (`targets="interactions"`, the default): the explicit events
  of one (user, item) within one session (a cart, then its transaction; repeated carts) form ONE
  explicit interaction, at the row of its first explicit event, recording its strongest kind
  (cart < purchase). The raw events stay in the history as they are. Test target: each user's
  LAST explicit interaction; validation target: the one before it (users with >= 2). Users with
  no explicit event only train. `targets="events"` is the paper-literal reading (every explicit
  event counts): a cart and its transaction are then two targets, and a third of the users'
  test item is the validation item a few minutes later.
* **Two fits.** `split.train` (the selection fit) holds the events strictly before each user's
  earliest held-out target: models early-stop and are tuned on the validation targets with it.
  `split.final()` is the same split for the TESTED model: it trains on every event strictly
  before each user's test target ("all prior interactions", as the paper), has no validation
  targets, and is trained for the epoch count the selection fit chose. Nothing at or after a test
  target is kept.
* Model input at prediction time: the user id and the last L events before the target, each an
  item and its event kind (`last_events`: 1 implicit, e.g. a view; 2 explicit, e.g. a cart; 3 a
  purchase; 0 padding). `distinct_window` collapses repeated events of one item (the paper's
  "sequence of distinct recent items").
* **Repeat and new targets**: a target is `repeat` when its item occurs among the user's events
  before it (history only), else `new`; evaluations report both groups.
* **Candidates**: the target + `n_negatives` items, drawn once from a seed and shared by every
  model. `negatives="never_interacted"` (the paper): uniformly from items the user never
  interacted with up to that target (a validation target's candidates may hold items the user
  touches later: nothing after a target is known at its time). `negatives="hard"`: every other
  item the user touched before the target (the most recent first, up to `n_negatives`), filled up
  uniformly with never-interacted items, so "has the user touched this item?" no longer separates the target
  from its negatives. (`hard` replaces the former `unbought` mode, which only added viewed but
  unbought items: `hard` adds every touched item, bought ones too.)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from .data.preprocess import PADDING_ITEM, Interactions
from .data.schema import DataError

TARGET_MODES = ("interactions", "events")
NEGATIVE_MODES = ("never_interacted", "hard")
# Explicit event names that complete a purchase; any other explicit event (a cart) is weaker.
PURCHASE_EVENTS = frozenset({"transaction", "order", "purchase", "buy"})
# The event kinds a window carries, weakest first; 0 pads a window shorter than L.
KINDS = ("padding", "implicit", "explicit", "purchase")


@dataclass
class Targets:
    """Held-out targets of one kind (validation or test), one row per user.

    user int64[n], item int64[n], row int64[n] (the target's row in `Split.events`),
    candidates int64[n, 1 + n_negatives] (column 0 is the target), repeat bool[n] (the item
    occurs among the user's events before the target), kind str[n] (the strongest explicit
    event of the target interaction, e.g. "transaction" for a cart that was bought).
    """

    user: np.ndarray
    item: np.ndarray
    row: np.ndarray
    candidates: np.ndarray
    repeat: np.ndarray
    kind: np.ndarray

    FIELDS = ("user", "item", "row", "candidates", "repeat", "kind")

    def __len__(self) -> int:
        return len(self.user)

    def none(self) -> Targets:
        """No targets, with the same column shapes (the final fit has no validation targets)."""
        return Targets(*(getattr(self, name)[:0] for name in self.FIELDS))


@dataclass
class Split:
    """A leave-one-out split: events up to each test target, the rows a fit trains on, targets.

    stage "selection": `is_train` stops before each user's earliest held-out target (early
    stopping and tuning on `valid`). stage "final" (`split.final()`): `is_train` is every event
    before each user's test target and `valid` is empty (the tested model).
    """

    data: Interactions
    kept_rows: np.ndarray  # int64: rows of data.events up to and including each user's test target
    is_train: np.ndarray  # bool[len(kept_rows)]: rows this stage's fit trains on
    valid: Targets
    test: Targets
    negatives: str
    seed: int
    targets_mode: str = "interactions"
    stage: str = "selection"

    @cached_property
    def events(self) -> pd.DataFrame:
        """Every kept event, re-indexed 0..n-1 (target rows index into this frame)."""
        return self.data.events.iloc[self.kept_rows].reset_index(drop=True)

    @property
    def train(self) -> pd.DataFrame:
        """The events this stage's fit trains on (see the class docstring)."""
        return self.events[self.is_train]

    @property
    def n_users(self) -> int:
        return self.data.n_users

    @property
    def n_items(self) -> int:
        return self.data.n_items

    def final(self) -> Split:
        """The split for the tested model: trains on every event strictly before each user's test
        target (validation targets and the events after them included), no validation targets."""
        if self.stage == "final":
            return self
        is_train = np.ones(len(self.kept_rows), dtype=bool)
        is_train[self.test.row] = False  # a test user's kept events end at the test target
        final = dataclasses.replace(self, is_train=is_train, valid=self.valid.none(), stage="final")
        if "events" in self.__dict__:
            final.__dict__["events"] = self.events
        return final

    def targets(self, which: str) -> Targets:
        if which not in ("valid", "test"):
            raise ValueError(f"which must be 'valid' or 'test', got {which!r}.")
        return self.valid if which == "valid" else self.test

    def sequences(self, which: str, length: int, same_session: bool = False) -> np.ndarray:
        """The last `length` items before each target: int64[n, length], left-padded with 0.

        same_session=True keeps only items of the target's own session (session-based models).
        """
        return last_items(self.events, self.targets(which).row, length, same_session)

    def windows(self, which: str, length: int, same_session: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The last `length` events before each target: (items int64[n, length], kinds
        int8[n, length]), as `last_events`."""
        return last_events(self.events, self.targets(which).row, length, same_session)

    def gaps(self, which: str, length: int, same_session: bool = False) -> np.ndarray:
        """Hours from each of the last `length` events before each target to the target:
        float32[n, length], aligned with `windows` (0 where padded); see `event_gaps`."""
        return event_gaps(self.events, self.targets(which).row, length, same_session)

    def excluded_items(self, which: str) -> tuple[np.ndarray, np.ndarray]:
        """Items that are not negatives for each target (CSR: ptr int64[n + 1], items int64[nnz]).

        For full ranking: every item outside this set (and not the target) is a negative.
        never_interacted: every item the user touched up to the target. hard: none but the
        target itself when it is a first touch (touched-before items are negatives). What the user
        touches after the target is not known at its time, so it is never excluded.
        """
        targets = self.targets(which)
        user_of = self.events["user"].to_numpy()
        keys = user_of * (self.n_items + 1) + self.events["item"].to_numpy()
        target_row = np.full(self.n_users, -1)
        target_row[targets.user] = targets.row
        keep = (target_row[user_of] >= 0) & (np.arange(len(keys)) <= target_row[user_of])
        if self.negatives == "hard":
            first = np.zeros(len(keys), dtype=bool)
            first[np.unique(keys, return_index=True)[1]] = True
            keep &= first & (np.arange(len(keys)) >= target_row[user_of])
        pairs = np.unique(keys[keep])
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
            f"{kind}_{name}": np.asarray(
                getattr(self.targets(kind), name), dtype=None if name != "kind" else str
            )
            for kind in ("valid", "test")
            for name in Targets.FIELDS
        }
        np.savez_compressed(
            out / "split.npz",
            user_ids=self.data.user_ids,
            item_ids=self.data.item_ids,
            kept=self.kept_rows,
            is_train=self.is_train,
            **arrays,
        )
        meta = {"negatives": self.negatives, "seed": self.seed, "targets_mode": self.targets_mode}
        meta |= {"stage": self.stage, "report": self.data.report}
        (out / "split.json").write_text(json.dumps(meta))
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
            kind: Targets(*(arrays[f"{kind}_{n}"] for n in Targets.FIELDS)) for kind in ("valid", "test")
        }
        return cls(
            data,
            arrays["kept"],
            arrays["is_train"],
            targets["valid"],
            targets["test"],
            meta["negatives"],
            meta["seed"],
            meta["targets_mode"],
            meta["stage"],
        )


def last_items(events: pd.DataFrame, rows: np.ndarray, length: int, same_session: bool = False) -> np.ndarray:
    """Items of the `length` events before each row, same user (and session if asked).

    -> int64[n, length], left-padded with PADDING_ITEM (0).
    """
    return last_events(events, rows, length, same_session)[0]


def last_events(
    events: pd.DataFrame, rows: np.ndarray, length: int, same_session: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The `length` events before each row, same user (and session if asked), oldest first.

    -> (items int64[n, length], kinds int8[n, length]), left-padded with item 0 and kind 0
    (`KINDS`: 1 implicit, 2 explicit, 3 purchase).
    """
    index, valid = _window_rows(events, rows, length, same_session)
    items = np.where(valid, events["item"].to_numpy()[index], PADDING_ITEM)
    return items, np.where(valid, event_kinds(events)[index], 0).astype(np.int8)


def event_gaps(events: pd.DataFrame, rows: np.ndarray, length: int, same_session: bool = False) -> np.ndarray:
    """Hours from each of the `length` events before each row (as `last_events`) to the row's own
    event: float32[n, length], oldest first, 0 where the window is padded. The row's time is the
    moment of the request ("now"), which a shop knows when it recommends."""
    index, valid = _window_rows(events, rows, length, same_session)
    times = events["timestamp"].to_numpy().astype("datetime64[ms]").astype(np.int64)
    hours = (times[np.asarray(rows, dtype=np.int64)][:, None] - times[index]) / 3_600_000
    return np.where(valid, hours, 0.0).astype(np.float32)


def _window_rows(
    events: pd.DataFrame, rows: np.ndarray, length: int, same_session: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(index int64[n, length], valid bool[n, length]): the rows of the `length` events before each
    row, oldest first, and which of them belong to the same user (and session if asked)."""
    if length < 1:
        raise ValueError(f"sequence length must be >= 1, got {length}.")
    group = events["session" if same_session else "user"].to_numpy()
    rows = np.asarray(rows, dtype=np.int64)
    index = rows[:, None] - np.arange(length, 0, -1)[None, :]
    valid = index >= 0
    index = np.maximum(index, 0)
    valid &= group[index] == group[rows][:, None]
    return index, valid


def event_kinds(events: pd.DataFrame) -> np.ndarray:
    """int8[n_events]: 1 implicit, 2 explicit, 3 purchase (an explicit event in PURCHASE_EVENTS)."""
    explicit = events["explicit"].to_numpy()
    purchase = np.isin(events["event"].to_numpy().astype(str), list(PURCHASE_EVENTS))
    return (1 + explicit + (explicit & purchase)).astype(np.int8)


def distinct_window(items: np.ndarray, kinds: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The last `length` DISTINCT items of each window, each with its strongest kind in the window.

    items int64[n, m], kinds int8[n, m] (as `last_events`, oldest first) -> (items int64[n, length],
    kinds int8[n, length]), left-padded with 0. An item keeps the place of its last occurrence:
    view A, view B, view A gives [B, A]; view A, cart A gives [A] with kind explicit.
    """
    n, m = items.shape
    order = np.argsort(items, axis=1, kind="stable")  # equal items stay in time order
    s_items = np.take_along_axis(items, order, 1).ravel()
    s_kinds = np.take_along_axis(kinds, order, 1).ravel()
    starts = np.ones(n * m, dtype=bool)
    starts[1:] = s_items[1:] != s_items[:-1]
    starts[::m] = True  # runs never cross rows
    run_start = np.flatnonzero(starts)
    run_of = np.cumsum(starts) - 1
    strongest = np.maximum.reduceat(s_kinds, run_start)[run_of]
    last_of_run = np.r_[starts[1:], True] & (s_items != PADDING_ITEM)
    keep, strongest_at = np.zeros((n, m), dtype=bool), np.zeros((n, m), dtype=np.int8)
    np.put_along_axis(keep, order, last_of_run.reshape(n, m), 1)
    np.put_along_axis(strongest_at, order, strongest.reshape(n, m), 1)
    column = length - np.cumsum(keep[:, ::-1], axis=1)[:, ::-1]  # where each kept event lands
    keep &= column >= 0
    out_items, out_kinds = np.zeros((n, length), dtype=items.dtype), np.zeros((n, length), dtype=np.int8)
    row = np.nonzero(keep)[0]
    out_items[row, column[keep]] = items[keep]
    out_kinds[row, column[keep]] = strongest_at[keep]
    return out_items, out_kinds


def explicit_interactions(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Fold explicit events into explicit interactions (one per user, session and item).

    -> (row int64[m]: the row of each interaction's first explicit event, in row order;
        kind str[m]: its strongest explicit event, a purchase event over any other).
    """
    rows = np.flatnonzero(events["explicit"].to_numpy())
    names = events["event"].to_numpy()[rows].astype(str)
    stride = int(events["item"].max()) + 1 if len(events) else 1
    group = events["session"].to_numpy()[rows].astype(np.int64) * stride + events["item"].to_numpy()[rows]
    group_id = pd.factorize(group)[0]  # (session, item) pairs numbered by their first row
    first = np.diff(np.maximum.accumulate(group_id), prepend=-1) > 0
    strength = np.isin(names, list(PURCHASE_EVENTS)).astype(np.int8)
    strongest = np.lexsort((-strength, group_id))  # per group: the strongest first, then by row
    kind = names[strongest[np.diff(group_id[strongest], prepend=-1) != 0]]
    return rows[first], kind


def leave_one_out(
    data: Interactions,
    *,
    n_negatives: int = 999,
    negatives: str = "never_interacted",
    targets: str = "interactions",
    seed: int = 0,
) -> Split:
    """Split `data` by the protocol above and draw the fixed candidate sets."""
    if negatives not in NEGATIVE_MODES:
        raise ValueError(f"negatives must be one of {NEGATIVE_MODES}, got {negatives!r}.")
    if targets not in TARGET_MODES:
        raise ValueError(f"targets must be one of {TARGET_MODES}, got {targets!r}.")
    if n_negatives < 1:
        raise ValueError(f"n_negatives must be >= 1, got {n_negatives}.")
    events = data.events
    users, items = events["user"].to_numpy(), events["item"].to_numpy()
    rows = np.arange(len(events))

    if targets == "interactions":
        explicit_rows, kinds = explicit_interactions(events)
    else:
        explicit_rows = np.flatnonzero(events["explicit"].to_numpy())
        kinds = events["event"].to_numpy()[explicit_rows].astype(str)
    if len(explicit_rows) == 0:
        raise DataError("no explicit events (e.g. purchases) after filtering: there is nothing to hold out.")
    explicit_users = users[explicit_rows]
    last = np.r_[explicit_users[1:] != explicit_users[:-1], True]
    before_last = np.r_[last[1:], False] & ~last
    second = before_last & np.r_[explicit_users[1:] == explicit_users[:-1], False]
    test_rows, valid_rows = explicit_rows[last], explicit_rows[second]

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

    keys = users * (data.n_items + 1) + items
    unique_keys, first_row = np.unique(keys, return_index=True)
    rng = np.random.default_rng(seed)
    made = {}
    for which, target_rows, target_kinds in (
        ("valid", valid_rows, kinds[second]),
        ("test", test_rows, kinds[last]),
    ):
        target_users = users[target_rows]
        # Never-interacted as of the target: the items touched up to it (not later) are excluded.
        up_to = np.full(data.n_users, -1)
        up_to[target_users] = target_rows
        excluded = np.unique(keys[rows <= up_to[users]])
        hard = (
            touched_before(users, items, user_start, target_rows, n_negatives)
            if negatives == "hard"
            else np.zeros((len(target_rows), 0), dtype=np.int64)
        )
        n_hard = np.count_nonzero(hard, axis=1)
        fill = sample_negatives(target_users, excluded, data.n_items, n_negatives - n_hard, rng)
        candidates = np.zeros((len(target_rows), 1 + n_negatives), dtype=np.int64)
        candidates[:, 0] = items[target_rows]
        candidates[:, 1 : 1 + hard.shape[1]] = hard
        columns = np.arange(n_negatives)[None, :] - n_hard[:, None]
        take = columns >= 0
        candidates[:, 1:][take] = fill[np.nonzero(take)[0], columns[take]]
        made[which] = Targets(
            user=target_users,
            item=items[target_rows],
            row=new_row[target_rows],
            candidates=candidates,
            repeat=first_row[np.searchsorted(unique_keys, keys[target_rows])] < target_rows,
            kind=target_kinds,
        )
    return Split(data, rows[kept], is_train[kept], made["valid"], made["test"], negatives, seed, targets)


def touched_before(
    users: np.ndarray, items: np.ndarray, user_start: np.ndarray, target_rows: np.ndarray, limit: int
) -> np.ndarray:
    """The distinct items each target's user touched before it, other than the target item, the
    most recently touched first, at most `limit`: int64[n, <= limit], right-padded with 0.

    users, items: of every event (sorted by user, time); user_start int64[n_users]: first row of
    each user; target_rows int64[n].
    """
    n = len(target_rows)
    start = user_start[users[target_rows]]
    lengths = target_rows - start
    owner = np.repeat(np.arange(n), lengths)
    offset = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    row = np.repeat(start, lengths) + offset
    item = items[row]
    keep = item != items[target_rows][owner]
    owner, item, row = owner[keep], item[keep], row[keep]
    latest = np.lexsort((-row, item, owner))  # per (target, item): the latest touch first
    distinct = (np.diff(owner[latest], prepend=-1) != 0) | (np.diff(item[latest], prepend=-1) != 0)
    owner, item, row = owner[latest][distinct], item[latest][distinct], row[latest][distinct]
    recent = np.lexsort((-row, owner))
    owner, item = owner[recent], item[recent]
    rank = np.arange(len(owner)) - np.searchsorted(owner, owner)
    keep = rank < limit
    out = np.zeros((n, min(limit, int(rank.max(initial=-1)) + 1)), dtype=np.int64)
    out[owner[keep], rank[keep]] = item[keep]
    return out


def sample_negatives(
    users: np.ndarray, excluded_pairs: np.ndarray, n_items: int, n, rng: np.random.Generator
) -> np.ndarray:
    """`n` distinct items per user drawn uniformly from 1..n_items minus the user's excluded items.

    excluded_pairs: sorted int64 keys user * (n_items + 1) + item. n: an int, or int[len(users)]
    for a number per user. Returns int64[len(users), max(n)], each row's draws first, then 0s.
    Vectorised rejection sampling: oversample, drop excluded and repeated draws, redraw the rare
    rows that came up short.
    """
    users = np.asarray(users, dtype=np.int64)
    wanted = np.broadcast_to(np.asarray(n, dtype=np.int64), users.shape)
    out = np.zeros((len(users), int(wanted.max(initial=0))), dtype=np.int64)
    if out.size == 0:
        return out
    n_excluded = np.bincount(excluded_pairs // (n_items + 1), minlength=users.max() + 1)[users]
    available = n_items - n_excluded
    short = available < wanted
    if short.any():
        i = int(np.flatnonzero(short)[0])
        raise DataError(
            f"cannot draw the negatives of {int(short.sum())} target(s): user {int(users[i])} needs "
            f"{int(wanted[i])} never-interacted items but only {int(available[i])} of the {n_items} items "
            "are left. Lower n_negatives (or use a larger catalogue)."
        )
    dense = wanted > 0.5 * available  # small catalogues: draw from the explicit complement
    for i in np.flatnonzero(dense & (wanted > 0)):  # a loop over the few users of a small catalogue only
        mine = excluded_pairs[np.searchsorted(excluded_pairs, users[i] * (n_items + 1)) :]
        mine = mine[mine < (users[i] + 1) * (n_items + 1)] - users[i] * (n_items + 1)
        pool = np.setdiff1d(np.arange(1, n_items + 1), mine)
        out[i, : wanted[i]] = rng.choice(pool, size=wanted[i], replace=False)
    todo = np.flatnonzero(~dense & (wanted > 0))
    while len(todo):
        # Enough draws that the expected number of distinct allowed items exceeds n by 10%.
        share = 1.1 * (wanted[todo] / available[todo]).max()
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
        pick = np.argsort(order_keys, axis=1)[:, : out.shape[1]]
        done = distinct.sum(axis=1) >= wanted[todo]
        picked = np.take_along_axis(ordered, pick, axis=1)
        picked[np.arange(out.shape[1])[None, :] >= wanted[todo][:, None]] = 0
        out[todo[done]] = picked[done]
        todo = todo[~done]
    return out


def protocol_facts(split: Split) -> dict:
    """The traps of a dataset's protocol, measured on its test targets (before any training).

    share_repeat_targets: test targets whose item the user touched before (a "remind" task);
    share_targets_in_last5: test targets among the user's last 5 events (what `recently_viewed`
    finds); share_test_equals_valid: test users whose test item is their validation item
    (a cart and its transaction counted twice under `targets="events"`).
    """
    test, valid = split.test, split.valid
    valid_item = np.zeros(split.n_users, dtype=np.int64)
    valid_item[valid.user] = valid.item
    in_last5 = (split.sequences("test", 5) == test.item[:, None]).any(axis=1)
    return {
        "targets": split.targets_mode,
        "test_targets": len(test),
        "validation_targets": len(valid),
        "share_repeat_targets": float(test.repeat.mean()),
        "share_targets_in_last5": float(in_last5.mean()),
        "share_test_equals_valid": float((valid_item[test.user] == test.item).mean()),
    }
