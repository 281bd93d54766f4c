"""Colab gets everything a notebook imports: requirements-colab.txt names every third-party library
that recsys_helpers/ and the notebooks import and Colab does not ship, and the Colab cells install it."""

import ast
import json
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).parents[1]
COLAB_LIST = ROOT / "requirements-colab.txt"
# Distributions preinstalled on every Colab runtime (with TensorFlow 2.16+ and Keras 3.3+).
COLAB_SHIPS = {
    "tensorflow", "keras", "numpy", "scipy", "pandas", "pyarrow", "matplotlib", "seaborn", "tqdm",
    "threadpoolctl", "scikit-learn", "ipython", "ipykernel", "pytest",
}  # fmt: skip
# Import names that are not the distribution's name.
DISTRIBUTION = {"sklearn": "scikit-learn", "yaml": "PyYAML", "PIL": "pillow"}


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def colab_requirements():
    lines = (line.split("#")[0].strip() for line in COLAB_LIST.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def top_level_imports(source):
    """The top-level modules that absolute imports in `source` name (IPython magics and ! lines dropped)."""
    lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()]
    modules = set()
    for node in ast.walk(ast.parse("\n".join(lines))):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def notebook_code(path):
    cells = json.loads(path.read_text())["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]


def imported_distributions():
    """{distribution: a file that imports it} over recsys_helpers/ and the notebooks, stdlib excluded."""
    sources = [(p, p.read_text()) for p in sorted((ROOT / "recsys_helpers").rglob("*.py"))]
    sources += [(p, code) for p in sorted((ROOT / "notebooks").glob("*.ipynb")) for code in notebook_code(p)]
    found = {}
    for path, source in sources:
        for module in top_level_imports(source) - set(sys.stdlib_module_names) - {"recsys_helpers"}:
            found.setdefault(normalized(DISTRIBUTION.get(module, module)), path.relative_to(ROOT))
    return found


def test_the_import_scan_sees_the_libraries_it_must():
    found = imported_distributions()
    assert {"tensorflow", "keras", "numpy", "optuna", "implicit"} <= set(found), sorted(found)
    assert top_level_imports("%matplotlib inline\n!pip install x\nimport yaml.x\nfrom . import y") == {"yaml"}


def test_every_imported_library_is_shipped_by_colab_or_in_requirements_colab():
    listed = {normalized(r.name) for r in colab_requirements()}
    ships = {normalized(name) for name in COLAB_SHIPS}
    found = imported_distributions()
    missing = {name: str(path) for name, path in found.items() if name not in ships | listed}
    assert not missing, f"add to requirements-colab.txt (or COLAB_SHIPS if Colab has it): {missing}"
    # and the list holds nothing Colab already has, nor anything no code imports
    assert not listed & ships, listed & ships
    assert listed <= set(found), listed - set(found)


def test_requirements_colab_bounds_are_those_of_pyproject():
    pyproject = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^dependencies = \[(.*?)^\]", pyproject, re.MULTILINE | re.DOTALL).group(1)
    declared = {normalized(r.name): r.specifier for r in map(Requirement, re.findall(r'"([^"]+)"', block))}
    for requirement in colab_requirements():
        assert declared.get(normalized(requirement.name)) == requirement.specifier, requirement


def colab_cells():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Colab with a GPU", 1)[1].split("\n## ", 1)[0]
    cell = re.search(r"```\n(.*?)```", section, re.DOTALL).group(1)
    notebook = notebook_code(ROOT / "notebooks/00_overview_and_setup.ipynb")
    [setup] = [code for code in notebook if "google.colab" in code]
    return {"README": cell, "notebook 00": setup}


@pytest.mark.parametrize("where", ["README", "notebook 00"])
def test_the_colab_cells_install_requirements_colab_then_the_library_without_dependencies(where):
    cell = colab_cells()[where]
    assert "requirements-colab.txt" in cell and "--no-deps" in cell
    assert cell.index("requirements-colab.txt") < cell.index("--no-deps")


def test_make_test_oldest_installs_requirements_colab_and_the_oldest_stack_lacks_it():
    makefile = (ROOT / "Makefile").read_text()
    assert "$(OLD_PY) -m pip install -r requirements-colab.txt" in makefile
    lines = (ROOT / "requirements-oldest.txt").read_text().splitlines()
    oldest = {normalized(line.split("==")[0]) for line in lines if line and not line.startswith("#")}
    assert not oldest & {normalized(r.name) for r in colab_requirements()}
