"""The epoch loop's stopping rule: patience, and no stop before `min_steps` optimizer steps."""

import warnings
from types import SimpleNamespace

import pytest

from recsys_helpers.models import ModelConfig, training

# Validation HR@10 after each epoch: a popularity plateau that dips, then the embeddings learn.
PLATEAU_THEN_LEARNING = [0.20, 0.15, 0.15, 0.16, 0.18, 0.40, 0.55, 0.60, 0.58, 0.57, 0.56]


def _run(monkeypatch, steps_per_epoch: int, **config) -> tuple[object, list[int]]:
    scores = iter(PLATEAU_THEN_LEARNING)

    def evaluate(model, split, which):
        hr = next(scores)
        return SimpleNamespace(hr=lambda k: hr, ndcg=lambda k: 0.0)

    monkeypatch.setattr(training, "evaluate", evaluate)
    config = ModelConfig(epochs=len(PLATEAU_THEN_LEARNING), verbose=0, **config)
    model = SimpleNamespace(name="fake", config=config, on_epoch=None)
    ran, restored = [], []  # the state is the number of the epoch that produced it
    history = training.train_with_early_stopping(
        model,
        SimpleNamespace(valid=[0]),
        run_epoch=lambda epoch: ran.append(epoch) or 1.0 / epoch,
        get_state=lambda: ran[-1],
        set_state=restored.append,
        steps_per_epoch=steps_per_epoch,
    )
    return history, restored


def test_patience_alone_stops_on_the_plateau(monkeypatch):
    history, restored = _run(monkeypatch, steps_per_epoch=100, patience=3, min_steps=0)
    assert history.epoch == [1, 2, 3, 4] and history.best_epoch == 1 and restored == [1]


def test_min_steps_waits_out_the_plateau_and_keeps_the_best_epoch(monkeypatch):
    history, restored = _run(monkeypatch, steps_per_epoch=100, patience=3, min_steps=600)
    assert history.best_epoch == 8 and history.epoch[-1] == 11  # patience 3 after the best
    assert restored == [8]


def test_min_steps_counts_steps_not_epochs(monkeypatch):
    # 500 steps are 2 epochs of 250: the plateau stops it again.
    history, _ = _run(monkeypatch, steps_per_epoch=250, patience=3, min_steps=500)
    assert history.epoch == [1, 2, 3, 4]


def test_bad_stopping_settings_are_refused():
    with pytest.raises(ValueError, match="min_steps"):
        ModelConfig(min_steps=-1)
    with pytest.raises(ValueError, match="patience"):
        ModelConfig(patience=0)


def test_on_epoch_sees_every_validation_and_may_end_training(monkeypatch):
    seen = []

    def prune_at_three(epoch, steps, hr):
        seen.append((epoch, steps, hr))
        if epoch == 3:
            raise RuntimeError("pruned")

    monkeypatch.setattr(training, "evaluate", lambda model, split, which: SimpleNamespace(
        hr=lambda k: 0.5, ndcg=lambda k: 0.0
    ))  # fmt: skip
    model = SimpleNamespace(name="fake", config=ModelConfig(epochs=5, verbose=0), on_epoch=prune_at_three)
    with pytest.raises(RuntimeError, match="pruned"):
        training.train_with_early_stopping(
            model, SimpleNamespace(valid=[0]), lambda epoch: 1.0, lambda: None, lambda state: None, 40
        )
    assert seen == [(1, 40, 0.5), (2, 80, 0.5), (3, 120, 0.5)]


def test_selection_on_fewer_than_100_validation_targets_warns_with_the_count():
    from recsys_helpers.models.training import warn_if_few_validation_targets

    with pytest.warns(UserWarning, match="rests on 19 validation targets .* by 0.053"):
        warn_if_few_validation_targets(19, "early stopping")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_few_validation_targets(100, "early stopping")
        warn_if_few_validation_targets(0, "early stopping")  # no validation: nothing is selected
