"""The TensorFlow and Keras versions the library supports, checked without importing them.

The range runs from the oldest pair `make test` checks (requirements-oldest.txt: TensorFlow 2.16,
the first release built on Keras 3, with Keras 3.3) to the pinned one in requirements.txt
(TensorFlow 2.21, Keras 3.15); anything Colab has shipped since 2024 is inside it. Importing
`recsys_helpers.models` on older versions raises one ImportError with this module's message;
`python -m recsys_helpers versions` prints the verdict (notebook 00's Colab cell runs it).
"""

from __future__ import annotations

from importlib import metadata

OLDEST = {"TensorFlow": (2, 16), "Keras": (3, 3)}
PACKAGES = {"TensorFlow": "tensorflow", "Keras": "keras"}
UPGRADE = "pip install -U 'tensorflow>=2.16' 'keras>=3.3'"


def installed() -> dict[str, str | None]:
    """{"TensorFlow": "2.21.0", "Keras": "3.15.1"} from the installed packages' metadata (None: missing)."""
    found = {}
    for name, package in PACKAGES.items():
        try:
            found[name] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def _major_minor(version: str) -> tuple[int, int]:
    parts = [int("".join(ch for ch in part if ch.isdigit()) or 0) for part in version.split(".")[:2]]
    return parts[0], parts[1] if len(parts) > 1 else 0


def _wanted() -> str:
    return " and ".join(f"{name} >= {'.'.join(map(str, OLDEST[name]))}" for name in OLDEST)


def unsupported(found: dict[str, str | None]) -> str | None:
    """The message for versions such as {"TensorFlow": "2.18.0", "Keras": "3.8.0"} that are missing
    or older than supported, or None when both are supported."""
    if all(v is not None and _major_minor(v) >= OLDEST[name] for name, v in found.items()):
        return None
    have = ", ".join(f"{name} {version or 'not installed'}" for name, version in found.items())
    return (
        f"recsys_helpers needs {_wanted()}; this environment has {have}. "
        f"Install newer ones with `{UPGRADE}` (on Colab, then restart the session)."
    )


def describe(found: dict[str, str | None] | None = None) -> str:
    """One line: the versions found and whether the library supports them."""
    found = installed() if found is None else found
    message = unsupported(found)
    have = ", ".join(f"{name} {version}" for name, version in found.items())
    return message or f"{have}: supported (the library needs {_wanted()})."
