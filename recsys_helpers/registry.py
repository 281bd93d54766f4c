"""The names of the registered models, importable without TensorFlow: the command line checks
its arguments with them before TensorFlow is imported. `recsys_helpers.models.MODELS` maps each
name to its class, in this order."""

MODEL_NAMES = ("popularity", "recently_viewed", "mf", "gru4rec", "caser", "rnn_hybrid", "ite", "cnn_hybrid")
