"""Reusable Keras layers: the Caser CNN encoder, the fusion of long/short-term signals, and the
implicit -> explicit two-stage head. The proposed model, Caser, the ablations and ITE compose
these; none of them copies another's code.

Shapes: B users in a batch, C candidate items per user, L recent items, d embedding size.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

PACKAGE = "recsys_helpers"


@keras.saving.register_keras_serializable(package=PACKAGE)
class CaserEncoder(layers.Layer):
    """Caser's convolutional sequence embedding (Tang & Wang, WSDM 2018).

    The last L item embeddings form an L x d "image". Horizontal filters of height h span h
    consecutive items and the full width d (union-level patterns such as A -> B -> C); each is
    max-pooled over time. Vertical filters of height L weight the L rows (a learned weighted sum
    of the recent items, point-level patterns). Both are concatenated and projected to d:

        o = [max_t relu(conv_h(E)) for h in heights] ++ flatten(W_v^T E)      s = relu(W o + b)

    inputs: float[B, L, d] (padding rows must be zero) -> float[B, d].
    """

    def __init__(self, dim, heights=(1, 2, 3, 4), filters=50, vertical=4, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.dim, self.heights, self.filters = dim, tuple(heights), filters
        self.vertical, self.dropout_rate = vertical, dropout
        self.horizontal = [
            layers.Conv1D(filters, h, activation="relu", name=f"horizontal_{h}") for h in heights
        ]
        self.project = layers.Dense(dim, activation="relu", name="project")
        self.dropout = layers.Dropout(dropout)

    def build(self, input_shape):
        length, width = input_shape[1], input_shape[2]
        if self.vertical:
            self.vertical_kernel = self.add_weight(
                shape=(length, self.vertical), initializer="glorot_uniform", name="vertical_kernel"
            )
        for conv in self.horizontal:
            conv.build(input_shape)
        features = self.filters * len(self.heights) + self.vertical * width
        self.project.build((input_shape[0], features))

    def call(self, embedded, training=False):
        parts = [ops.max(conv(embedded), axis=1) for conv in self.horizontal]
        if self.vertical:
            vertical = ops.einsum("bld,lv->bvd", embedded, self.vertical_kernel)
            parts.append(ops.reshape(vertical, (-1, self.vertical * embedded.shape[-1])))
        return self.project(self.dropout(ops.concatenate(parts, axis=-1), training=training))

    def get_config(self):
        return super().get_config() | {
            "dim": self.dim,
            "heights": self.heights,
            "filters": self.filters,
            "vertical": self.vertical,
            "dropout": self.dropout_rate,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class Fusion(layers.Layer):
    """Combine user-side vectors with each candidate's embedding.

    "product": x = [s (.) e_j, p (.) e_j]  (each signal meets the item as in a factorisation)
    "concat":  x = [s, p, e_j]             (the MLP must learn the interactions)
    Either user-side vector may be absent (ablations). inputs: list of float[B, d] user-side
    vectors and float[B, C, d] candidates -> float[B, C, F].
    """

    def __init__(self, mode="product", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("product", "concat"):
            raise ValueError(f"Fusion mode must be 'product' or 'concat', got {mode!r}.")
        self.mode = mode

    def call(self, inputs):
        *user_side, candidates = inputs
        expanded = [ops.expand_dims(u, 1) for u in user_side]
        if self.mode == "product":
            return ops.concatenate([u * candidates for u in expanded], axis=-1)
        broadcast = [u + ops.zeros_like(candidates[..., :1]) for u in expanded]
        return ops.concatenate([*broadcast, candidates], axis=-1)

    def get_config(self):
        return super().get_config() | {"mode": self.mode}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImplicitExplicitHead(layers.Layer):
    """The two-stage head of ITE (Tran et al.) and of the proposed model.

    phi = MLP(x) (ReLU layers with dropout and L2), the "implicit layer";
    implicit logit = w_i . phi;  explicit logit = w_e . relu(W phi)   (explicit module on phi).
    Rank by sigmoid(implicit) * sigmoid(explicit): interest first, then conversion.
    inputs float[B, C, F] -> (implicit, explicit) logits, each float[B, C].
    """

    def __init__(self, units=(100, 50), dropout=0.2, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.dropout_rate, self.l2 = tuple(units), dropout, l2
        reg = keras.regularizers.L2(l2) if l2 else None
        self.mlp = [
            layers.Dense(n, activation="relu", kernel_regularizer=reg, name=f"mlp_{n}") for n in units
        ]
        self.dropouts = [layers.Dropout(dropout) for _ in units]
        self.implicit = layers.Dense(1, name="implicit_logit")
        self.explicit_hidden = layers.Dense(
            units[-1], activation="relu", kernel_regularizer=reg, name="explicit"
        )
        self.explicit = layers.Dense(1, name="explicit_logit")

    def build(self, input_shape):
        shape = tuple(input_shape)
        for dense in self.mlp:
            dense.build(shape)
            shape = (*shape[:-1], dense.units)
        self.implicit.build(shape)
        self.explicit_hidden.build(shape)
        self.explicit.build(shape)

    def call(self, x, training=False):
        for dense, dropout in zip(self.mlp, self.dropouts, strict=True):
            x = dropout(dense(x), training=training)
        implicit = ops.squeeze(self.implicit(x), -1)
        explicit = ops.squeeze(self.explicit(self.explicit_hidden(x)), -1)
        return implicit, explicit

    def get_config(self):
        return super().get_config() | {"units": self.units, "dropout": self.dropout_rate, "l2": self.l2}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Embedding(layers.Embedding):
    """keras.layers.Embedding that reads only the looked-up rows of its table.

    Keras' own lookup (`ops.take`) first reads the whole table as a tensor and gathers from that
    copy; a row-sparse update of the table in the same training step must then copy the table
    (the read still holds its buffer), so every step costs O(table size) and an epoch grows
    faster than the data. Gathering from the variable itself (TensorFlow's ResourceGather) reads
    B rows and leaves the update in place. Same values and gradients (an IndexedSlices of the
    rows) as Keras' layer; TensorFlow backend only, like the trainer.
    """

    def call(self, inputs):
        return ops.cast(tf.gather(self.embeddings.value, ops.cast(inputs, "int32")), self.compute_dtype)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MaskedEmbedding(Embedding):
    """An item embedding whose padding id 0 maps to the zero vector (no mask propagation)."""

    def call(self, inputs):
        vectors = super().call(inputs)
        return vectors * ops.expand_dims(ops.cast(ops.not_equal(inputs, 0), vectors.dtype), -1)

    def compute_mask(self, inputs, mask=None):
        return None


@keras.saving.register_keras_serializable(package=PACKAGE)
class StopGradient(layers.Layer):
    """Its input unchanged, through which no gradient flows back: `keras.ops.stop_gradient` as a
    layer, since older Keras 3 (3.3, the oldest stack) cannot apply the op to a symbolic tensor."""

    def call(self, inputs):
        return ops.stop_gradient(inputs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class CopyFeatures(layers.Layer):
    """Where each candidate occurs in the user's latest events: the features of a copy path.

    inputs: history int[B, H] (the last H items, oldest first, 0 = padding), history kinds
    int[B, H] (1 implicit, 2 explicit, 3 purchase) and candidates int[B, C] -> float[B, C, F]:

        recency: does j occur among the last 1, 2, 3, 5, 10, H events       6 indicators
        kind:    log(1 + number of j's implicit / explicit / purchase events)  3 values
        count:   log(1 + number of j's events)                                1 value

    A candidate the user never touched gets all zeros. No weights: the model learns what to make
    of the features (recsys_helpers.models.neural.RepeatHybrid).
    """

    RECENCY = (1, 2, 3, 5, 10)
    N_KINDS = 3

    @property
    def n_features(self) -> int:
        return len(self.RECENCY) + 1 + self.N_KINDS + 1

    def call(self, inputs):
        history, kinds, candidates = inputs
        length = history.shape[1]
        match = ops.cast(
            ops.logical_and(
                ops.equal(ops.expand_dims(history, 1), ops.expand_dims(candidates, 2)),
                ops.expand_dims(ops.not_equal(history, 0), 1),
            ),
            "float32",
        )  # [B, C, H]
        # Every feature is a count of matches over some positions: one batched matmul of the match
        # tensor with a [B, H, F] table (recency windows, kind one-hots, ones) gives them all.
        position = np.arange(length)
        windows = np.stack([position >= length - k for k in (*self.RECENCY, length)], axis=1)
        per_position = ops.concatenate(
            [
                ops.broadcast_to(
                    ops.convert_to_tensor(windows.astype("float32"))[None],
                    (ops.shape(history)[0], length, windows.shape[1]),
                ),
                ops.one_hot(kinds, self.N_KINDS + 1)[..., 1:],
                ops.expand_dims(ops.ones_like(history, dtype="float32"), -1),
            ],
            axis=-1,
        )
        counts = ops.matmul(match, per_position)  # [B, C, F]
        recent = ops.minimum(counts[..., : windows.shape[1]], 1.0)  # occurs in the window: 0 or 1
        return ops.concatenate([recent, ops.log1p(counts[..., windows.shape[1] :])], axis=-1)
