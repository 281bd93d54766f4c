"""Recommenders behind one interface, created by name:

model = make_model("cnn_hybrid", seq_len=5, epochs=20)
history = model.fit(split)
scores = model.score(users, sequences, candidates)
"""

from __future__ import annotations

from ..registry import MODEL_NAMES
from ._tensorflow import GPUS  # first: the quiet import of TensorFlow and the version check
from .base import CASER_DEFAULTS, History, ModelConfig, Recommender
from .baselines import Popularity, RecentlyViewed
from .gru4rec import GRU4Rec
from .mf import MF
from .neural import ITE, Caser, CNNHybrid, NeuralRecommender, RNNHybrid

MODELS: dict[str, type[Recommender]] = dict(
    zip(MODEL_NAMES, (Popularity, RecentlyViewed, MF, GRU4Rec, Caser, RNNHybrid, ITE, CNNHybrid), strict=True)
)

__all__ = [
    "GPUS",
    "CASER_DEFAULTS",
    "ITE",
    "MF",
    "MODELS",
    "CNNHybrid",
    "Caser",
    "GRU4Rec",
    "History",
    "ModelConfig",
    "NeuralRecommender",
    "Popularity",
    "RNNHybrid",
    "RecentlyViewed",
    "Recommender",
    "make_model",
]


def make_model(name: str, config: ModelConfig | None = None, **overrides) -> Recommender:
    """Create a model by registry name; unknown names or hyper-parameters are a clear error."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}.")
    return MODELS[name](config, **overrides)
