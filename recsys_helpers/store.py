"""Nothing lost: what `train` and `experiment` keep on disk, written so that a kill at any moment
leaves either the old state or the new one, never half of one.

- `ModelCache`: trained models under a key (see `experiments.train`). An entry is written into a
  temporary folder, moved into place file by file, its history file last: an entry counts only
  once its history exists. An entry that fails to load (an empty or truncated `.keras` file, a
  broken JSON file) is reported in one line, deleted and trained again, never a crash.
- `ResultStore`: the rows of an experiment, `results.csv` (one row per model and seed, written as
  soon as it is evaluated) and each row's per-user ranks (`evaluations/*.npz`, what the
  summary's bootstrap intervals need). A row carries a key of everything it depends on (the split,
  the model's settings, the library's code); the same command run again reuses the rows whose key
  matches and re-runs the others.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .evaluation import Evaluation
from .protocol import Split

if TYPE_CHECKING:  # the models import TensorFlow; this module must not (tuning imports it)
    from .models.base import History, Recommender

PACKAGE = Path(__file__).parent


def fingerprint(identity: object, split: Split, sources: list[Path]) -> str:
    """16 hex digits over `identity` (JSON), the split (events, training rows, every candidate),
    the code of the given source files and the TensorFlow version: equal keys mean the same
    computation."""
    import tensorflow as tf

    text = json.dumps(identity, sort_keys=True, default=list)
    digest = hashlib.blake2b(text.encode(), digest_size=8)
    digest.update(tf.__version__.encode())
    for source in sources:
        digest.update(code_of(source).encode())
    events = split.events
    for array in (
        events["user"].to_numpy(),
        events["item"].to_numpy(),
        events["explicit"].to_numpy(),
        events["timestamp"].to_numpy(),
        split.is_train,
        split.valid.candidates,
        split.test.candidates,
    ):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def code_of(source: Path) -> str:
    """The code of a Python file without its docstrings, comments and layout (its syntax tree):
    editing a docstring or reformatting a file leaves the keys, and so the cached models, valid.
    Parsed once per version of the file (an experiment computes a key per model and seed)."""
    stat = source.stat()
    return _code_of(str(source), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _code_of(path: str, mtime_ns: int, size: int) -> str:
    tree = ast.parse(Path(path).read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and _is_docstring(body[0]):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def model_sources() -> list[Path]:
    """The code a trained model depends on (the cache key of a model)."""
    return sorted((PACKAGE / "models").glob("*.py"))


def library_sources() -> list[Path]:
    """All of the library's code (the key of an experiment's row: training and evaluation)."""
    return sorted(PACKAGE.rglob("*.py"))


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` to a temporary file beside `path`, then rename it onto `path` (atomic on one
    file system): a reader finds the old file or the new one, never a part of one."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


class ModelCache:
    """Trained models in `folder`, one entry per key: `<name>-<key>.keras` (+ files the model's
    `save` writes beside it) and `<name>-<key>.history.json`, written last."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _stem(self, name: str, key: str) -> str:
        return f"{name}-{key}"

    def load(self, name: str, key: str, cls: type[Recommender]) -> tuple[Recommender, History] | None:
        """The cached model and the history of its original run, or None when the entry is
        missing or broken (a broken one is reported in one line and deleted, to be retrained)."""
        from .models.base import History

        stem = self._stem(name, key)
        history_file = self.folder / f"{stem}.history.json"
        if not history_file.exists():
            return None
        try:
            history = History(**json.loads(history_file.read_text()))
            return cls.load(self.folder / stem), history
        except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
            print(
                f"model cache: entry {stem} in {self.folder} is damaged ({_why(self.folder / stem, error)}); "
                "deleted, training it again.",
                flush=True,
            )
            self.discard(name, key)
            return None

    def history(self, name: str, key: str) -> History | None:
        """The history of an entry, without loading its model; None when there is none."""
        from .models.base import History

        try:
            return History(**json.loads((self.folder / f"{self._stem(name, key)}.history.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, name: str, key: str, model: Recommender, history: History) -> None:
        """Write an entry: the model into a temporary folder, then each file moved into place,
        the history file last (a kill before that leaves no entry, only files to overwrite)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = self._stem(name, key)
        staging = Path(tempfile.mkdtemp(dir=self.folder, prefix=f".{stem}."))
        try:
            model.save(staging / stem)
            for written in sorted(staging.iterdir()):
                os.replace(written, self.folder / written.name)
            write_atomically(
                self.folder / f"{stem}.history.json", lambda tmp: tmp.write_text(json.dumps(asdict(history)))
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def discard(self, name: str, key: str) -> None:
        """Delete every file of one entry."""
        stem = self._stem(name, key)
        for path in self.folder.glob(f"{stem}.*"):
            path.unlink(missing_ok=True)


def _why(stem: Path, error: Exception) -> str:
    """What is wrong with a cache entry, in words (Keras calls a damaged file "not found")."""
    keras_file = stem.with_name(stem.name + ".keras")
    if keras_file.exists() and not zipfile.is_zipfile(keras_file):
        return f"{keras_file.name} is not a complete .keras zip file ({keras_file.stat().st_size:,} bytes)"
    if isinstance(error, json.JSONDecodeError):
        return f"a JSON file of the entry is broken: {error}"
    return str(error).splitlines()[0] if str(error) else type(error).__name__


class ResultStore:
    """An experiment's rows in `folder`: results.csv and evaluations/<model>-seed<seed>.npz."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.csv = self.folder / "results.csv"

    def rows(self) -> pd.DataFrame:
        """Every row written so far (empty frame if none)."""
        return pd.read_csv(self.csv) if self.csv.exists() else pd.DataFrame(columns=["model", "seed", "key"])

    def get(self, model: str, seed: int, key: str) -> tuple[dict, Evaluation] | None:
        """The stored row and evaluation of (model, seed) if it was computed under `key`, else None."""
        rows = self.rows()
        match = rows[(rows["model"] == model) & (rows["seed"] == seed) & (rows["key"] == key)]
        npz = self._npz(model, seed)
        if match.empty or not npz.exists():
            return None
        with np.load(npz) as stored:
            if str(stored["key"]) != key:
                return None
            full = stored["full_ranks"] if stored["has_full"] else None
            repeat = stored["repeat"] if stored["has_repeat"] else None
            evaluation = Evaluation(stored["ranks"], full, repeat)
        return match.iloc[-1].to_dict(), evaluation

    def put(self, row: dict, evaluation: Evaluation) -> None:
        """Store one evaluated row (with "model", "seed" and "key"): its ranks first, then the
        row in results.csv, replacing an earlier row of the same model and seed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        npz = self._npz(row["model"], row["seed"])
        npz.parent.mkdir(exist_ok=True)
        arrays = {
            "key": np.array(row["key"]),
            "ranks": evaluation.ranks,
            "has_full": np.array(evaluation.full_ranks is not None),
            "full_ranks": evaluation.full_ranks if evaluation.full_ranks is not None else np.empty(0),
            "has_repeat": np.array(evaluation.repeat is not None),
            "repeat": evaluation.repeat if evaluation.repeat is not None else np.empty(0, dtype=bool),
        }

        def write(tmp: Path) -> None:
            with tmp.open("wb") as file:
                np.savez(file, **arrays)

        write_atomically(npz, write)
        rows = self.rows()
        rows = rows[~((rows["model"] == row["model"]) & (rows["seed"] == row["seed"]))]
        rows = pd.concat([rows, pd.DataFrame([row])], ignore_index=True) if len(rows) else pd.DataFrame([row])
        write_atomically(self.csv, lambda tmp: rows.to_csv(tmp, index=False))

    def _npz(self, model: str, seed: int) -> Path:
        return self.folder / "evaluations" / f"{model}-seed{seed}.npz"
