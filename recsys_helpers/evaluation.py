"""Evaluate any Recommender on a Split: per-user ranks -> HR@K / NDCG@K with bootstrap CIs.

Sampled mode ranks each target among its stored candidates (target + 999 negatives). Full mode
ranks it among every item that the negative mode allows (Krichene & Rendle, KDD 2020): the
negatives are then all items outside `split.excluded_items`, not a sample of them. Every
evaluation carries the targets' repeat flags, so its summary reports the repeat and new targets
separately beside the overall metrics (the two jobs of a shop's recommender: remind, discover).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .metrics import (
    Estimate,
    bootstrap_ci,
    hits,
    ndcg_gains,
    paired_comparison,
    rank_of_positive,
    relative_gain,
)
from .protocol import Split

SEQUENCE_LENGTH = 50  # items given to `score`; each model uses the last `input_length` of them


GROUPS = ("repeat", "new")


@dataclass
class Evaluation:
    """Per-user ranks of one model on one set of targets (same order as `split.<which>.user`).

    repeat bool[n]: which targets are repeat targets (their item occurs in the user's history);
    the metrics of each group answer "does the model remind?" and "does it discover?".
    """

    ranks: np.ndarray
    full_ranks: np.ndarray | None = None
    repeat: np.ndarray | None = None

    def gains(
        self, metric: str = "hr", k: int = 10, full: bool = False, group: str | None = None
    ) -> np.ndarray:
        """Per-user HR@k ("hr": 1 if rank < k) or NDCG@k ("ndcg") of all targets or one group."""
        if metric not in ("hr", "ndcg"):
            raise ValueError(f"metric must be 'hr' or 'ndcg', got {metric!r}.")
        gains = {"hr": hits, "ndcg": ndcg_gains}[metric](self._ranks(full), k)
        return gains if group is None else gains[self.group_mask(group)]

    def group_mask(self, group: str) -> np.ndarray:
        """bool[n]: the targets of `group` ("repeat" or "new")."""
        if group not in GROUPS:
            raise ValueError(f"group must be one of {GROUPS}, got {group!r}.")
        if self.repeat is None:
            raise ValueError("this evaluation has no repeat/new flags; evaluate it on a Split.")
        return self.repeat if group == "repeat" else ~self.repeat

    def hr(self, k: int = 10, full: bool = False, group: str | None = None) -> float:
        return _mean(self.gains("hr", k, full, group))

    def ndcg(self, k: int = 10, full: bool = False, group: str | None = None) -> float:
        return _mean(self.gains("ndcg", k, full, group))

    def ci(
        self, metric: str = "hr", k: int = 10, full: bool = False, seed: int = 0, group: str | None = None
    ) -> Estimate:
        """95% bootstrap CI over users of "hr" or "ndcg" at k (all targets or one group)."""
        return bootstrap_ci(self.gains(metric, k, full, group), seed=seed)

    def summary(self, k: int = 10) -> dict[str, float]:
        """Overall metrics, then the share of repeat targets and the metrics of each group."""
        has_full = self.full_ranks is not None
        out = {f"hr@{k}": self.hr(k), f"ndcg@{k}": self.ndcg(k)}
        if has_full:
            out |= {f"full_hr@{k}": self.hr(k, full=True), f"full_ndcg@{k}": self.ndcg(k, full=True)}
        if self.repeat is not None:
            out["share_repeat"] = float(self.repeat.mean())
            for group in GROUPS:
                out |= {
                    f"hr@{k}_{group}": self.hr(k, group=group),
                    f"ndcg@{k}_{group}": self.ndcg(k, group=group),
                }
            if has_full:
                out |= {f"full_hr@{k}_{group}": self.hr(k, full=True, group=group) for group in GROUPS}
        return out

    def _ranks(self, full: bool) -> np.ndarray:
        if full and self.full_ranks is None:
            raise ValueError("this evaluation has no full-ranking results; call evaluate(..., full=True).")
        return self.full_ranks if full else self.ranks


def _mean(values: np.ndarray) -> float:
    """Mean, NaN for an empty group (no warning)."""
    return float(values.mean()) if len(values) else float("nan")


def model_inputs(model, split: Split, which: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, sequences, kinds) as the model wants them: the last SEQUENCE_LENGTH events before
    each target and their event kinds, session-only for session-based models."""
    same_session = getattr(model, "session_based", False)
    return split.targets(which).user, *split.windows(which, SEQUENCE_LENGTH, same_session=same_session)


def time_inputs(model, split: Split, which: str) -> dict[str, np.ndarray]:
    """{"gaps": float32[n, SEQUENCE_LENGTH]} (hours from each input event to the target, aligned
    with `model_inputs`) for a model that reads them (`reads_gaps`), else {}: the extra keyword
    arguments of its `score`."""
    if not getattr(model, "reads_gaps", False):
        return {}
    same_session = getattr(model, "session_based", False)
    return {"gaps": split.gaps(which, SEQUENCE_LENGTH, same_session=same_session)}


def evaluate(
    model, split: Split, which: str = "test", full: bool = False, batch_size: int = 2048
) -> Evaluation:
    """Rank every target of `which` ("valid" or "test") with `model` (see module docstring)."""
    targets = split.targets(which)
    if len(targets) == 0:
        raise ValueError(f"the split has no {which} targets to evaluate.")
    users, sequences, kinds = model_inputs(model, split, which)
    times = time_inputs(model, split, which)
    ranks = np.empty(len(targets), dtype=np.int64)
    for start in range(0, len(targets), batch_size):
        part = slice(start, start + batch_size)
        extra = {name: values[part] for name, values in times.items()}
        scores = model.score(users[part], sequences[part], targets.candidates[part], kinds[part], **extra)
        scores = np.asarray(scores)
        ranks[part] = rank_of_positive(scores[:, 0], scores[:, 1:])
    full_ranks = _full_ranks(model, split, which, users, sequences, kinds, times) if full else None
    return Evaluation(ranks, full_ranks, targets.repeat)


def _full_ranks(
    model, split: Split, which: str, users, sequences, kinds, times: dict, batch_size: int = 256
) -> np.ndarray:
    targets = split.targets(which)
    ptr, excluded = split.excluded_items(which)
    all_items = np.arange(1, split.n_items + 1)
    ranks = np.empty(len(targets), dtype=np.int64)
    for start in range(0, len(targets), batch_size):
        stop = min(start + batch_size, len(targets))
        candidates = np.broadcast_to(all_items, (stop - start, split.n_items))
        part = slice(start, stop)
        extra = {name: values[part] for name, values in times.items()}
        scores = np.asarray(model.score(users[part], sequences[part], candidates, kinds[part], **extra))
        ranks[start:stop] = count_beating(scores, targets.item[start:stop], ptr[start : stop + 1], excluded)
    return ranks


def count_beating(
    scores: np.ndarray, positives: np.ndarray, ptr: np.ndarray, excluded: np.ndarray
) -> np.ndarray:
    """Full-ranking ranks: scores float[n, n_items] over items 1..n_items, positives int[n], and
    ptr int[n + 1] (absolute offsets into `excluded`) listing the items that are not negatives
    (the user's own items). rank = #{allowed items j != positive : score_j >= score_positive}."""
    n = len(positives)
    beaten = scores >= scores[np.arange(n), positives - 1][:, None]
    rows = np.repeat(np.arange(n), np.diff(ptr))
    beaten[rows, excluded[ptr[0] : ptr[-1]] - 1] = False
    beaten[np.arange(n), positives - 1] = False
    return np.count_nonzero(beaten, axis=1)


def paired_table(
    evaluations: dict[str, Evaluation | list[Evaluation]],
    pairs: list[tuple[str, str]],
    metric: str = "hr",
    k: int = 10,
) -> pd.DataFrame:
    """One row "A - B" per pair of evaluations (same targets): the mean per-user difference of
    `metric` ("hr" or "ndcg") at k, its paired-bootstrap 95% CI (low, high) and the p-value. A
    list of evaluations is one model's seeds: the interval then has two levels (seeds, then users;
    `metrics.paired_comparison`), seed s of A paired with seed s of B."""
    rows = {}
    for a, b in pairs:
        c = paired_comparison(
            _per_seed_gains(evaluations[a], metric, k), _per_seed_gains(evaluations[b], metric, k)
        )
        rows[f"{a} - {b}"] = {
            "difference": c.difference.mean,
            "low": c.difference.low,
            "high": c.difference.high,
            "p_value": c.p_value,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _per_seed_gains(
    result: Evaluation | list[Evaluation], metric: str, k: int, full: bool = False, group: str | None = None
) -> np.ndarray:
    """float[n_seeds, n_users]: the per-user gains of one evaluation, or of each seed's."""
    return np.stack([e.gains(metric, k, full, group) for e in _seeds(result)])


def _seeds(result: Evaluation | list[Evaluation]) -> list[Evaluation]:
    """One model's evaluations, one per seed (a single evaluation is one seed)."""
    return list(result) if isinstance(result, (list, tuple)) else [result]


def gain_by_group(
    evaluations: dict[str, Evaluation], reference: str, groups: dict[str, np.ndarray], k: int = 10
) -> pd.DataFrame:
    """Relative NDCG@k gain over the `reference` evaluation, mean(model) / mean(reference) - 1, with
    a paired-bootstrap 95% CI, for every other evaluation and every group of targets (boolean masks
    over the targets, e.g. interest-shift users). One row per (model, users); a group without
    targets gets NaN."""
    base = evaluations[reference].gains("ndcg", k)
    rows = []
    for name, result in evaluations.items():
        if name == reference:
            continue
        gains = result.gains("ndcg", k)
        for users, members in groups.items():
            row = {"model": name, "users": users, "n": int(members.sum())}
            est = relative_gain(gains[members], base[members]) if members.any() else None
            row |= {
                f"ndcg@{k}": gains[members].mean() if members.any() else np.nan,
                f"{reference} ndcg@{k}": base[members].mean() if members.any() else np.nan,
                "gain": est.mean if est else np.nan,
                "low": est.low if est else np.nan,
                "high": est.high if est else np.nan,
            }
            rows.append(row)
    return pd.DataFrame(rows)


def comparison_table(evaluations: dict[str, Evaluation | list[Evaluation]], k: int = 10) -> pd.DataFrame:
    """One row per model (the dict's keys, in order): HR@k with its 95% CI, NDCG@k, full-ranking
    HR@k (when computed), the share of repeat targets and HR@k of the repeat and new targets. A
    list of evaluations is one model's seeds on the same targets: means over them, and a two-level
    interval (seeds, then users; `metrics.bootstrap_ci`)."""
    rows = {}
    for name, result in evaluations.items():
        first = _seeds(result)[0]
        est = bootstrap_ci(_per_seed_gains(result, "hr", k))
        row = {f"hr@{k}": est.mean, "ci": f"[{est.low:.3f}, {est.high:.3f}]"}
        row[f"ndcg@{k}"] = float(_per_seed_gains(result, "ndcg", k).mean())
        if first.full_ranks is not None:
            row[f"full_hr@{k}"] = float(_per_seed_gains(result, "hr", k, full=True).mean())
        if first.repeat is not None:
            row["share_repeat"] = float(first.repeat.mean())
            for group in GROUPS:
                row[f"hr@{k}_{group}"] = _mean(_per_seed_gains(result, "hr", k, group=group).ravel())
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")


def top_items(model, split: Split, index: int, k: int = 10, which: str = "test") -> tuple[np.ndarray, int]:
    """One target's full-ranking view: the model's top-k items over the whole catalogue, leaving
    out the user's own earlier items (the target stays in), and the target's rank (1 = first) in
    the same ranking as `evaluate(..., full=True)`."""
    targets = split.targets(which)
    ptr, excluded = split.excluded_items(which)
    users, sequences, kinds = model_inputs(model, split, which)
    extra = {name: values[[index]] for name, values in time_inputs(model, split, which).items()}
    all_items = np.arange(1, split.n_items + 1)
    scores = model.score(users[[index]], sequences[[index]], all_items[None], kinds[[index]], **extra)
    scores = np.asarray(scores, dtype=np.float64)
    rank = int(count_beating(scores, targets.item[[index]], ptr[index : index + 2], excluded)[0]) + 1
    own = np.setdiff1d(excluded[ptr[index] : ptr[index + 1]], [targets.item[index]])
    scores[0, own - 1] = -np.inf
    return all_items[np.argsort(-scores[0], kind="stable")[:k]], rank


def occlusion(model, split: Split, index: int, items: dict[str, int], which: str = "test") -> pd.DataFrame:
    """Which items of one target's input window drove the scores of `items` ({label: item}): each
    item of the window the model reads (`window_inputs`: the last L events, or the last L distinct
    items) in turn is replaced by padding and the drop of every item's score is recorded (one
    row per non-padding window position, oldest first; a large drop = the item mattered)."""
    users, sequences, kinds = model_inputs(model, split, which)
    window = model.window_inputs(sequences[[index]], kinds[[index]])  # the L items the model reads
    window, window_kinds = window["sequence"][0], window["kinds"][0]
    candidates = np.array([list(items.values())])
    base = model.score(users[[index]], window[None], candidates, window_kinds[None])[0]
    rows = []
    for position in np.flatnonzero(window):
        occluded, occluded_kinds = window.copy(), window_kinds.copy()
        occluded[position] = occluded_kinds[position] = 0
        drop = base - model.score(users[[index]], occluded[None], candidates, occluded_kinds[None])[0]
        row = {"position": f"t-{len(window) - position}", "item": int(window[position])}
        rows.append(row | dict(zip(items, drop, strict=True)))
    return pd.DataFrame(rows)
