"""The course's teaching frame, checked mechanically on the committed notebooks: short code cells,
short outputs, a "What we learned" and an "Exercises" section, and no number in the prose that the
notebook's own outputs do not show (so hand-written prose cannot go stale)."""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("[0-9]*.ipynb"))
MAX_CODE_LINES, MAX_OUTPUT_LINES = 20, 40

# The frame is being rolled out notebook by notebook (by number); each still breaks the rule it is
# listed under. Strict: a notebook that starts to pass must leave its list.
NOT_YET = {
    "frame": set(),
    "outputs": set(),
    "code": set(),
    "numbers": set(),
}

# Numbers prose may state without an output: the paper's own figures and fixed constants.
ALLOWED = {
    "0.159",  # the paper's best HR@10 on RetailRocket (Table 2)
    "83,274",  # RetailRocket's items after the paper's filter (Table 1)
    "36,751",  # RetailRocket's users after the paper's filter (Table 1)
    "0.05",  # the tests' level: 95% intervals, p < 0.05
    "2,000",  # bootstrap resamples (metrics.bootstrap_ci)
    "1,000",  # the paper's candidates per test user: the target and 999 negatives
    "1,024",  # the paper's mini-batch size (training details)
}

# A decimal (0.201, 16.5) or a number with thousands separators (3,678), not part of a longer token.
NUMBER = re.compile(r"(?<![\w.])(?<!\d,)(?:\d+\.\d+|\d{1,3}(?:,\d{3})+)(?!\w|[.,]\d)")


def cells(path: Path, kind: str) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def output_text(cell: dict, mimes: tuple[str, ...] = ("text/plain", "text/markdown", "text/html")) -> str:
    """What a code cell printed, and displayed as any of `mimes`."""
    parts = []
    for output in cell.get("outputs", []):
        parts += output.get("text", [])
        for mime in mimes:
            value = output.get("data", {}).get(mime, [])
            parts += value if isinstance(value, list) else [value]
    return "".join(parts)


def numbers_missing(prose: str, printed: str) -> list[str]:
    """The numbers `prose` states that `printed` does not show at the same precision."""
    prose = re.sub(r"`[^`]*`", "", prose)  # code spans are code (a knob in a hint), not claims
    numbers = set(NUMBER.findall(prose)) - ALLOWED
    return sorted(n for n in numbers if not re.search(rf"(?<![\d.]){re.escape(n)}(?!\d)", printed))


def printed_by(path: Path) -> str:
    return "\n".join(output_text(c) for c in cells(path, "code"))


def numbers_missing_from_outputs(path: Path) -> list[str]:
    return numbers_missing(" ".join("".join(c["source"]) for c in cells(path, "markdown")), printed_by(path))


def readme_results() -> str:
    """The README's results: from "What the experiments show" to the next section."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    start = readme.index("**What the experiments show**")
    end = readme.find("\n## ", start)
    return readme[start : end if end > 0 else None]


def checked(rule: str):
    """The notebooks, with those still listed under `rule` in NOT_YET as strict expected failures."""
    return [
        pytest.param(path, marks=pytest.mark.xfail(strict=True, reason=f"{rule}: not converted yet"))
        if path.name[:2] in NOT_YET[rule]
        else path
        for path in NOTEBOOKS
    ]


def test_the_number_rule_finds_a_stale_number_and_accepts_printed_ones(tmp_path):
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["HR@10 is 0.563 on 2,478 targets (the paper's 0.159), "]},
            {"cell_type": "markdown", "source": ["the oracle 0.86, `w_viewed=0.45` and 0.862."]},
            {"cell_type": "code", "source": [], "outputs": [{"text": ["HR@10 0.563 on 2,478 targets\n"]}]},
            {"cell_type": "code", "source": [], "outputs": [{"data": {"text/plain": ["oracle 0.862"]}}]},
        ]
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(notebook))
    # 0.86 rounds a printed 0.862: prose quotes printed digits; the code span and the paper's figure pass
    assert numbers_missing_from_outputs(path) == ["0.86"]


@pytest.mark.parametrize("path", checked("code"), ids=lambda p: p.name[:2])
def test_code_cells_are_at_most_20_lines(path):
    lengths = [len("".join(c["source"]).splitlines()) for c in cells(path, "code")]
    assert max(lengths) <= MAX_CODE_LINES


@pytest.mark.parametrize("path", checked("outputs"), ids=lambda p: p.name[:2])
def test_no_cell_prints_more_than_40_lines(path):
    lengths = [len(output_text(c, ("text/plain", "text/markdown")).splitlines()) for c in cells(path, "code")]
    assert max(lengths, default=0) <= MAX_OUTPUT_LINES


@pytest.mark.parametrize("path", checked("frame"), ids=lambda p: p.name[:2])
def test_every_notebook_ends_with_what_we_learned_and_exercises(path):
    headings = [line for c in cells(path, "markdown") for line in "".join(c["source"]).splitlines()]
    assert "## What we learned" in headings and "## Exercises" in headings


@pytest.mark.parametrize("path", checked("numbers"), ids=lambda p: p.name[:2])
def test_every_number_in_the_prose_is_in_the_notebooks_outputs(path):
    assert numbers_missing_from_outputs(path) == []


def test_every_number_in_the_readmes_results_is_in_a_notebooks_outputs():
    printed = "\n".join(printed_by(path) for path in NOTEBOOKS)
    assert numbers_missing(readme_results(), printed) == []


def test_the_readmes_claim_table_is_the_one_notebook_08_printed():
    """The verdicts, not only their numbers: a row copied by hand cannot drift from the notebook's."""
    readme_rows = [line for line in readme_results().splitlines() if line.startswith("| ")]
    notebook = next(path for path in NOTEBOOKS if path.name.startswith("08"))
    printed = [output_text(c, ("text/markdown",)) for c in cells(notebook, "code")]
    claims = next(text for text in printed if text.startswith("| claim |"))
    assert readme_rows and readme_rows == [line for line in claims.splitlines() if line.startswith("| ")]
