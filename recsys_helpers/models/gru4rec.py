"""GRU4Rec (Hidasi et al., ICLR 2016), session-based, on the shared engine.

    h_t = GRU(dropout(E[i_1]), ..., dropout(E[i_t]))      from a zero state at the session start
    score(j) = h_t . W[j] + b_j                            (a separate output embedding W and bias b)

Trained to predict each next item of a training session from the session's previous items
(up to `seq_len`), with a softmax cross-entropy over the target and `negatives` items sampled
per example in proportion to popularity^0.75 (GRU4Rec's sampling).

The flaws Hidasi & Czapp (RecSys 2023) found in third-party versions are avoided: the hidden
state starts from zero at every session boundary, in training (examples never cross a session)
and at evaluation (`session_based = True`: only the target's own session is fed); the softmax
is taken over the sampled items only, and only sampled items are scored; dropout is applied to
the item embeddings as configured. A target that is the first event of its session has no
input: the zero state scores items by the output bias alone (a learned popularity).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from ..protocol import Split
from .base import ModelConfig
from .layers import MaskedEmbedding
from .neural import NeuralRecommender, _inputs, output_logits
from .trainer import sampled_softmax

GRU4REC_DEFAULTS = {"seq_len": 20, "negatives": 64, "dropout": 0.2}


class GRU4Rec(NeuralRecommender):
    """Session-based GRU next-item model; defaults: 20 items of context, 64 sampled negatives."""

    name = "gru4rec"
    two_stage = False
    session_based = True

    def __init__(self, config: ModelConfig | None = None, **overrides) -> None:
        super().__init__(config or ModelConfig().replace(**GRU4REC_DEFAULTS), **overrides)

    def build_network(self, n_users: int, n_items: int) -> keras.Model:
        c = self.config
        inputs = _inputs(c.seq_len)
        embedded = layers.Dropout(c.dropout)(
            MaskedEmbedding(n_items + 1, c.dim, name="input_items")(inputs["sequence"])
        )
        hidden = layers.GRU(c.dim, name="gru")(embedded, mask=ops.not_equal(inputs["sequence"], 0))
        logits = output_logits(hidden, inputs["items"], n_items, c.dim)
        return keras.Model(inputs, {"implicit": logits}, name=self.name)

    def training_rows(self, split: Split) -> np.ndarray:
        """Training interactions that have a previous item in the same session."""
        rows = np.flatnonzero(split.is_train)
        session = split.events["session"].to_numpy()
        return rows[(rows > 0) & (session[rows] == session[np.maximum(rows - 1, 0)])]

    def examples_per_step(self) -> int:
        """Sequences per step: batch_size / 8 (a softmax over 1 + negatives items each)."""
        return max(1, self.config.batch_size // 8)

    def loss_function(self):
        return sampled_softmax

    def negative_sampler(self, split: Split, users: np.ndarray, targets: np.ndarray):
        counts = np.bincount(split.train["item"].to_numpy(), minlength=split.n_items + 1).astype(np.float64)
        cumulative = np.cumsum(counts**0.75)
        cumulative /= cumulative[-1]

        def sample(rng: np.random.Generator) -> np.ndarray:
            drawn = np.searchsorted(cumulative, rng.random((len(targets), self.config.negatives)))
            clash = drawn == targets[:, None]
            while clash.any():  # the target must not also be a negative
                drawn[clash] = np.searchsorted(cumulative, rng.random(int(clash.sum())))
                clash = drawn == targets[:, None]
            return drawn

        return sample
