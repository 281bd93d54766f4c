"""TensorFlow and Keras, imported once for the whole library: quietly, and only if supported.

TensorFlow 2.21 writes C++ start-up lines to the process's stderr (oneDNN, CUDA probing, absl;
`TF_CPP_MIN_LOG_LEVEL` no longer silences them), which would land in notebook outputs and before
command-line messages. They are informational, so the import and the first device query run with
file descriptor 2 pointed at /dev/null; Python errors still surface as exceptions. Versions older
than `recsys_helpers.versions.OLDEST` raise one ImportError naming them and the fix.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from ..versions import unsupported


@contextlib.contextmanager
def quiet_stderr():
    """Point file descriptor 2 (the stderr of C and C++ code) at /dev/null inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# TensorFlow's Python logger configures itself on first use, and in Jupyter it then sets its level
# to INFO, overriding a notebook's earlier `logging.getLogger("tensorflow").setLevel(...)`: the
# level the caller chose is read here and restored after the import.
_level = logging.getLogger("tensorflow").level
with quiet_stderr():
    import keras
    import tensorflow as tf

    GPUS = tf.config.list_physical_devices("GPU")  # the CUDA probe ("failed call to cuInit") runs here
    # oneDNN builds log once per process, at the first boolean transpose (Keras' recurrent layers
    # transpose their masks), that they fall back to Eigen for booleans: let that happen here.
    tf.transpose(tf.zeros((1, 1), dtype=tf.bool))
    # tf.data's generator op tunes malloc at its first use and says so ("Memory patch applied"):
    # GRU4Rec feeds its batches through one.
    for _ in tf.data.Dataset.from_generator(lambda: iter([0]), output_signature=tf.TensorSpec((), tf.int32)):
        pass

tf.get_logger().setLevel(_level or tf.get_logger().level)

_message = unsupported({"TensorFlow": tf.__version__, "Keras": keras.__version__})
if _message:
    raise ImportError(_message)
