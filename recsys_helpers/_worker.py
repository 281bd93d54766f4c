"""What one training process of `experiments.train_many` runs.

This module imports nothing of the library at import time: a process started for training first
limits TensorFlow (and the BLAS and OpenMP libraries) to one thread, and only then loads the split
and, with the first job, TensorFlow. TensorFlow reads its thread counts once, when it starts.
"""

from __future__ import annotations

import logging
import os
import pickle
import time
import warnings

ONE_THREAD = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_state: dict = {}


def start(split: bytes, cache: str) -> None:
    """The process's initializer: one thread each, then the pickled split and the cache folder.
    TensorFlow's warnings (retracing notes) and deprecation warnings are silenced: the process
    shares the caller's stderr, a notebook's output."""
    os.environ.update(dict.fromkeys(ONE_THREAD, "1"))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    _state.update(split=pickle.loads(split), cache=cache)


def fit(job: dict) -> float:
    """Train one job (`train`'s keyword arguments with "name") into the cache; its seconds."""
    from .experiments import train

    began = time.perf_counter()
    options = {k: v for k, v in job.items() if k != "name"}
    train(job["name"], _state["split"], cache=_state["cache"], **options)
    return time.perf_counter() - began
