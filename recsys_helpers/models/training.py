"""The epoch loop every trained model shares: run an epoch, validate, keep the best weights."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

from ..evaluation import evaluate
from ..protocol import Split
from .base import History

# Fewer validation targets than this and one target moves HR@10 by more than 0.01: selecting an
# epoch (or a tuning trial) on them is mostly noise, and the user is told so.
MIN_VALIDATION_TARGETS = 100


def warn_if_few_validation_targets(n: int, what: str) -> None:
    """A UserWarning (shown once per message) when `what` (e.g. "early stopping") rests on fewer
    than MIN_VALIDATION_TARGETS validation targets."""
    if 0 < n < MIN_VALIDATION_TARGETS:
        warnings.warn(
            f"{what} rests on {n} validation targets (fewer than {MIN_VALIDATION_TARGETS}): one target "
            f"moves validation HR@10 by {1 / n:.3f}, so the choice is mostly noise. Use a longer log, "
            "or fix the epoch count (e.g. epochs=N with patience=N).",
            UserWarning,
            stacklevel=3,
        )


def train_with_early_stopping(
    model,
    split: Split,
    run_epoch: Callable[[int], float],
    get_state: Callable[[], object],
    set_state: Callable[[object], None],
    steps_per_epoch: int,
) -> History:
    """Call `run_epoch(epoch) -> mean loss` up to `model.config.epochs` times.

    After each epoch the model is scored on the validation targets; training stops after
    `patience` epochs without a better validation HR@10 (ties broken by NDCG@10) and the best
    state is restored. Without validation targets every epoch runs and the last state is kept.

    Stopping waits for `config.min_steps` optimizer steps (`steps_per_epoch` per epoch). On a
    small log an epoch is a few dozen steps, and the networks first sit on a popularity plateau
    for several epochs (validation HR@10 flat or dipping) before the embeddings learn: patience
    alone stopped them there, so results flipped with the seed. The best epoch is still the one
    with the best validation score, so a long wait costs time, never quality.

    `model.on_epoch(epoch, steps, valid_hr)`, when set, is called after each validation; it may
    raise to end training (tuning prunes unpromising trials this way).
    """
    config = model.config
    warn_if_few_validation_targets(len(split.valid), "early stopping")
    history = History()
    best, best_state = (-1.0, -1.0), None
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        loss = run_epoch(epoch)
        history.seconds.append(time.perf_counter() - start)
        history.epoch.append(epoch)
        history.loss.append(float(loss))
        if len(split.valid) == 0:
            history.best_epoch = epoch
            continue
        result = evaluate(model, split, "valid")
        history.valid_hr.append(result.hr(10))
        history.valid_ndcg.append(result.ndcg(10))
        if config.verbose:
            print(
                f"{model.name} epoch {epoch}: loss {loss:.4f}  valid HR@10 {result.hr(10):.4f}  "
                f"NDCG@10 {result.ndcg(10):.4f}  ({history.seconds[-1]:.1f} s)",
                flush=True,
            )
        if model.on_epoch is not None:
            model.on_epoch(epoch, epoch * steps_per_epoch, result.hr(10))
        if (result.hr(10), result.ndcg(10)) > best:
            best, best_state, history.best_epoch = (result.hr(10), result.ndcg(10)), get_state(), epoch
        elif epoch - history.best_epoch >= config.patience and epoch * steps_per_epoch >= config.min_steps:
            break
    if best_state is not None:
        set_state(best_state)
    return history
