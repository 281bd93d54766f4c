"""Recommenders behind one interface, created by name:

model = make_model("cnn_hybrid", seq_len=5, epochs=20)    # or "seen_first+cnn_hybrid", "gated_first+..."
history = model.fit(split)
scores = model.score(users, sequences, candidates)
"""

from __future__ import annotations

from ..registry import BEYOND_PAPER, MODEL_NAMES, split_name
from ._tensorflow import GPUS  # first: the quiet import of TensorFlow and the version check
from .base import CASER_DEFAULTS, HYBRID_DEFAULTS, ITE_DEFAULTS, History, ModelConfig, Recommender
from .baselines import GatedFirst, Popularity, RecentlyViewed, SeenFirst
from .gru4rec import GRU4Rec
from .mf import MF
from .neural import ITE, Caser, CNNHybrid, NeuralRecommender, RepeatHybrid, RNNHybrid
from .repeat_explore import RepeatExplore

MODELS: dict[str, type[Recommender]] = dict(
    zip(
        MODEL_NAMES,
        (Popularity, RecentlyViewed, MF, GRU4Rec, Caser, RNNHybrid, ITE, CNNHybrid),
        strict=True,
    )
)
BEYOND_PAPER_MODELS: dict[str, type[Recommender]] = dict(
    zip(BEYOND_PAPER, (RepeatHybrid, RepeatExplore), strict=True)
)
MODEL_CLASSES = MODELS | BEYOND_PAPER_MODELS  # every registry name (unwrapped) -> its class
WRAPPER_CLASSES: dict[str, type[SeenFirst]] = {"seen_first": SeenFirst, "gated_first": GatedFirst}

__all__ = [
    "GPUS",
    "CASER_DEFAULTS",
    "HYBRID_DEFAULTS",
    "ITE_DEFAULTS",
    "ITE",
    "MF",
    "MODELS",
    "MODEL_CLASSES",
    "BEYOND_PAPER_MODELS",
    "CNNHybrid",
    "Caser",
    "GRU4Rec",
    "GatedFirst",
    "History",
    "ModelConfig",
    "NeuralRecommender",
    "Popularity",
    "RNNHybrid",
    "RecentlyViewed",
    "RepeatExplore",
    "RepeatHybrid",
    "SeenFirst",
    "WRAPPER_CLASSES",
    "Recommender",
    "make_model",
]


def make_model(name: str, config: ModelConfig | None = None, **overrides) -> Recommender:
    """Create a model by registry name, or a wrapped one ("seen_first+caser", "gated_first+caser":
    the wrapped model gets the configuration); unknown names or hyper-parameters are a clear error."""
    wrapper, inner = split_name(name)
    model = MODEL_CLASSES[inner](config, **overrides)
    return WRAPPER_CLASSES[wrapper](model) if wrapper else model
