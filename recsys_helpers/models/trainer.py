"""A fast training step for networks with large embedding tables (TensorFlow backend).

Keras' Adam turns the row-sparse gradient of an embedding lookup into a dense update of the
whole table, every step: with ~80k items x 50 dimensions in two tables that update, not the
network, dominates the step time on a CPU. `LazyAdamTrainer` updates embedding tables
row-sparsely ("lazy" Adam, as in TensorFlow Addons' LazyAdam): only the rows looked up in a batch
get their moments and values updated. This differs from Adam: moments of rows absent from a
batch are not decayed, so a rarely seen item takes a larger step when it reappears. Every other
weight gets Keras' own Adam. Several steps run inside one compiled call (`steps_per_call`).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf


def weighted_bce(weights: dict[str, float]) -> Callable[[dict, dict], tf.Tensor]:
    """loss = sum_k weight_k * mean(BCE-with-logits(labels_k, logits_k)) (the two-stage task)."""

    def loss(labels: dict, logits: dict) -> tf.Tensor:
        terms = [
            w * tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels[k], logits=logits[k]))
            for k, w in weights.items()
        ]
        return tf.add_n(terms)

    return loss


def sampled_softmax(labels: dict, logits: dict) -> tf.Tensor:
    """Cross-entropy of a softmax over each row's sampled candidates (the positive in column 0)."""
    return tf.reduce_mean(
        tf.nn.softmax_cross_entropy_with_logits(labels=labels["implicit"], logits=logits["implicit"])
    )


class LazyAdamTrainer:
    """Train `network` on batches of {inputs} -> {labels}: loss_fn(labels, logits) + network.losses.

    lazy=False gives every variable Keras' plain Adam (the reference the lazy update is checked against).
    """

    def __init__(
        self,
        network: keras.Model,
        loss_fn: Callable[[dict, dict], tf.Tensor],
        learning_rate: float = 1e-3,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        steps_per_call: int = 16,
        lazy: bool = True,
    ) -> None:
        self.network, self.loss_fn = network, loss_fn
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.steps_per_call = steps_per_call
        tables = {
            id(layer.embeddings) for layer in network.layers if isinstance(layer, keras.layers.Embedding)
        }
        self.sparse = [v for v in network.trainable_variables if id(v) in tables]
        self.dense = [v for v in network.trainable_variables if id(v) not in tables]
        self.dense_optimizer = keras.optimizers.Adam(learning_rate, beta_1, beta_2, epsilon)
        self.dense_optimizer.build(self.dense)
        self.moments = [
            (tf.Variable(tf.zeros(v.shape), trainable=False), tf.Variable(tf.zeros(v.shape), trainable=False))
            for v in self.sparse
        ]
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._run = tf.function(self._steps, reduce_retracing=True)

    def loss(self, labels: dict, logits: dict) -> tf.Tensor:
        penalties = self.network.losses
        return self.loss_fn(labels, logits) + (tf.add_n(penalties) if penalties else 0.0)

    def _steps(self, inputs: dict, labels: dict) -> tf.Tensor:
        """Run one step per leading index of the stacked batches; return the mean loss."""
        n_steps = tf.shape(next(iter(labels.values())))[0]
        total = tf.constant(0.0)
        for i in tf.range(n_steps):
            batch = {k: v[i] for k, v in inputs.items()}
            with tf.GradientTape() as tape:
                logits = self.network(batch, training=True)
                loss = self.loss({k: v[i] for k, v in labels.items()}, logits)
            grads = tape.gradient(loss, self.sparse + self.dense)
            self._sparse_update(grads[: len(self.sparse)])
            self.dense_optimizer.apply_gradients(zip(grads[len(self.sparse) :], self.dense, strict=True))
            total += loss
        return total / tf.cast(n_steps, tf.float32)

    def _sparse_update(self, grads) -> None:
        self.iterations.assign_add(1)
        t = tf.cast(self.iterations, tf.float32)
        rate = self.learning_rate * tf.sqrt(1.0 - self.beta_2**t) / (1.0 - self.beta_1**t)
        for variable, grad, (m, v) in zip(self.sparse, grads, self.moments, strict=True):
            if not isinstance(grad, tf.IndexedSlices):
                grad = tf.IndexedSlices(tf.convert_to_tensor(grad), tf.range(tf.shape(grad)[0]))
            rows, position = tf.unique(grad.indices)
            g = tf.math.unsorted_segment_sum(grad.values, position, tf.shape(rows)[0])
            m_rows = self.beta_1 * tf.gather(m, rows) + (1.0 - self.beta_1) * g
            v_rows = self.beta_2 * tf.gather(v, rows) + (1.0 - self.beta_2) * tf.square(g)
            m.scatter_update(tf.IndexedSlices(m_rows, rows))
            v.scatter_update(tf.IndexedSlices(v_rows, rows))
            variable.value.scatter_sub(
                tf.IndexedSlices(rate * m_rows / (tf.sqrt(v_rows) + self.epsilon), rows)
            )

    def fit_epoch(
        self, inputs: dict, labels: dict, batch_size: int, rng: np.random.Generator, verbose: int = 0
    ):
        """One shuffled pass over all rows (the last incomplete batch is dropped); mean loss."""
        n = len(next(iter(labels.values())))
        order = rng.permutation(n)
        n_batches = max(1, n // batch_size)
        order = order[: n_batches * batch_size] if n >= batch_size else order
        batch_size = min(batch_size, n)
        progress = keras.utils.Progbar(n_batches, verbose=verbose, unit_name="step") if verbose else None
        losses = []
        for start in range(0, n_batches, self.steps_per_call):
            stop = min(start + self.steps_per_call, n_batches)
            rows = order[start * batch_size : stop * batch_size].reshape(stop - start, batch_size)
            loss = self._run({k: v[rows] for k, v in inputs.items()}, {k: v[rows] for k, v in labels.items()})
            losses.append(float(loss) * (stop - start))
            if progress:
                progress.update(stop, [("loss", float(loss))])
        return sum(losses) / n_batches
