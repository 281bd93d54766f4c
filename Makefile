# Developer workflow. `make help` lists the targets.
# Every recipe is plain bash, one line at a time (no .ONESHELL); the venv is used by path,
# never activated, so the targets work the same in a terminal, in CI and from an IDE.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# Quiet TensorFlow's C++ start-up logging in every recipe (pytest, papermill kernels, benchmarks).
export TF_CPP_MIN_LOG_LEVEL := 2
# Silence debugpy's "frozen modules" warning that every kernel start prints.
export PYDEVD_DISABLE_FILE_VALIDATION := 1

VENV  := .venv
PY    := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KERNEL := $(VENV)/share/jupyter/kernels/python3/kernel.json

# python3.11, else python3 if that is 3.11, else empty (the venv recipe then explains).
BOOT_PYTHON := $(shell command -v python3.11 2>/dev/null || \
	{ python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && command -v python3; })

# The numbered course notebooks, in order (00_..., 01_..., ...).
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
# The lessons (`make course`) and the five-seed study (`make experiments`: 08, 11).
STUDY   := $(filter notebooks/08_% notebooks/11_%,$(NOTEBOOKS))
LESSONS := $(filter-out $(STUDY),$(NOTEBOOKS))
# Those with outputs that nbval compares (cells marked NBVAL_CHECK_OUTPUT).
CHECKED_NOTEBOOKS := $(shell grep -l NBVAL_CHECK_OUTPUT $(NOTEBOOKS) 2>/dev/null)

.PHONY: help venv test test-oldest course experiments notebooks lint bench bench-quick clean

help:
	@echo "make course       create .venv if missing, install, run the lessons: every notebook but 08 and 11"
	@echo "                  (build/notebooks, build/html)"
	@echo "make experiments  the same for the five-seed study, notebooks 08 and 11"
	@echo "make test         create .venv if missing, run the unit tests (also on the oldest stack) and notebook checks"
	@echo "make test-oldest  only the unit tests, on the oldest supported TensorFlow/Keras (.venv-oldest)"
	@echo "make notebooks    re-execute the committed notebooks in place (their outputs are committed)"
	@echo "make lint         ruff check + ruff format --check"
	@echo "make bench        run benchmarks/run.py (bench-quick: with --quick)"
	@echo "make venv         only create/update .venv from requirements.txt + pyproject.toml"
	@echo "make clean        remove build outputs and tool caches (keeps .venv and data/)"

# ---------------------------------------------------------------------------------------------
# The virtual environment. The stamp makes re-runs instant; editing requirements.txt or
# pyproject.toml reinstalls. Installs use --no-deps: requirements.txt is a complete lock, so
# nothing is re-resolved, and `pip check` proves the lock is consistent.
venv: $(STAMP)

$(PY):
	@if [ -z "$(BOOT_PYTHON)" ]; then \
		echo "error: Python 3.11 is needed to create $(VENV) (neither python3.11 nor a python3 that is 3.11 was found)." >&2; \
		exit 1; \
	fi
	$(BOOT_PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt pyproject.toml | $(PY)
	@$(PY) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "error: $(VENV) is not Python 3.11; remove it (rm -rf $(VENV)) and run make again." >&2; exit 1; }
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install --no-deps -r requirements.txt
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	$(PY) -m pip check
	touch $@

# The venv's ipykernel registered as kernel "python3" inside the venv, so papermill and nbval
# run the notebooks with this environment whatever other Jupyter kernels the machine has.
$(KERNEL): $(STAMP)
	$(PY) -m ipykernel install --sys-prefix --name python3

# The oldest supported stack (requirements-oldest.txt: TensorFlow 2.16, Keras 3.3, NumPy 1.26;
# what Colab ships, so no Optuna or implicit), then exactly what the README's Colab cell installs:
# requirements-colab.txt resolved normally (-c requirements-oldest.txt only makes pip fail rather
# than replace the stack), then the library with --no-deps. `make test` runs the unit tests here
# too (not the notebooks).
OLD_VENV  := .venv-oldest
OLD_PY    := $(OLD_VENV)/bin/python
OLD_STAMP := $(OLD_VENV)/.installed

$(OLD_PY):
	@if [ -z "$(BOOT_PYTHON)" ]; then \
		echo "error: Python 3.11 is needed to create $(OLD_VENV) (neither python3.11 nor a python3 that is 3.11 was found)." >&2; \
		exit 1; \
	fi
	$(BOOT_PYTHON) -m venv $(OLD_VENV)

$(OLD_STAMP): requirements-oldest.txt requirements-colab.txt pyproject.toml | $(OLD_PY)
	$(OLD_PY) -m pip install --upgrade pip
	$(OLD_PY) -m pip install --no-deps -r requirements-oldest.txt
	$(OLD_PY) -m pip install -r requirements-colab.txt -c requirements-oldest.txt
	$(OLD_PY) -m pip install --no-deps -e .
	$(OLD_PY) -m pip check
	touch $@

test-oldest: $(OLD_STAMP)
	$(OLD_PY) -m pytest -p no:cacheprovider tests

# ---------------------------------------------------------------------------------------------
# Tests. pytest exits 5 when it collects no test. That counts as success ONLY while tests/
# holds no test file at all (a young project); once any test_*.py exists, collecting nothing
# means something is broken, and the target fails.
# Notebook checks (skipped while notebooks/ has no numbered notebook): each notebook runs
# headless on the small shop (SCALE=ci, at most 3 epochs per fit) into build/ci/ (kernel cwd =
# notebooks/, as in JupyterLab); then nbval re-executes, as stored (default parameters: the course
# shop), the notebooks that mark cells NBVAL_CHECK_OUTPUT, and compares those cells' outputs. Only
# notebooks that train nothing heavy carry the mark (01, 02): nbval re-runs every cell, and the
# course-scale facts that 04-10 print are checked without training by tests/test_course_shop.py.
# Between the two, the unit tests run again on the oldest supported stack (test-oldest).
# `make course` (or `make notebooks`) runs every notebook at course scale.
test: venv $(KERNEL)
	@rc=0; $(PY) -m pytest tests || rc=$$?; \
	if [ $$rc -eq 5 ] && [ -z "$$(find tests -name 'test_*.py' -o -name '*_test.py' | head -n 1)" ]; then \
		echo "tests/ has no test files yet: nothing to run (pytest exit 5 accepted)"; \
	elif [ $$rc -ne 0 ]; then \
		exit $$rc; \
	fi
	$(MAKE) test-oldest
ifneq ($(NOTEBOOKS),)
	mkdir -p build/ci
	for nb in $(NOTEBOOKS); do \
		$(PY) -m papermill -k python3 --cwd notebooks -p SCALE ci -p EPOCHS 3 "$$nb" "build/ci/$$(basename "$$nb")" || exit 1; \
	done
	$(PY) -m pytest --nbval-lax --nbval-current-env $(CHECKED_NOTEBOOKS)
else
	@echo "no notebooks/[0-9]*.ipynb yet: notebook checks skipped"
endif

# ---------------------------------------------------------------------------------------------
# The lessons in order (`course`), or the five-seed study (`experiments`), with each notebook's
# default parameters (the embedded synthetic shop): executed copies in build/notebooks/, HTML in
# build/html/. The two share the model cache (results/models/): run in either order.
define run_notebooks
	mkdir -p build/notebooks build/html
	for nb in $(1); do \
		out="build/notebooks/$$(basename "$$nb")"; \
		$(PY) -m papermill -k python3 --cwd notebooks --progress-bar "$$nb" "$$out" || exit 1; \
		$(PY) -m nbconvert --to html --output-dir build/html "$$out" || exit 1; \
	done
endef

course: venv $(KERNEL)
	$(call run_notebooks,$(LESSONS))

experiments: venv $(KERNEL)
	$(call run_notebooks,$(STUDY))

# The committed notebooks, re-executed in place with their default parameters (never -p, or the
# injected-parameters cell would be saved and replayed), then stripped of run-specific metadata.
STRIP_KEYS := metadata.papermill cell.metadata.papermill cell.metadata.execution metadata.widgets
notebooks: venv $(KERNEL)
	for nb in $(NOTEBOOKS); do \
		$(PY) -m papermill -k python3 --cwd notebooks "$$nb" "$$nb" || exit 1; \
	done
	$(PY) -m nbstripout --keep-output --keep-count --extra-keys "$(STRIP_KEYS)" $(NOTEBOOKS)

# ---------------------------------------------------------------------------------------------
lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: venv
	@if [ -f benchmarks/run.py ]; then \
		$(PY) benchmarks/run.py; \
	else \
		echo "benchmarks/run.py does not exist yet: nothing to run"; \
	fi

bench-quick: venv
	@if [ -f benchmarks/run.py ]; then \
		$(PY) benchmarks/run.py --quick; \
	else \
		echo "benchmarks/run.py does not exist yet: nothing to run"; \
	fi

# Keeps .venv (rm -rf .venv to rebuild it) and data/ (real data and data/cache/).
clean:
	rm -rf build .pytest_cache .ruff_cache *.egg-info
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -type d -name .ipynb_checkpoints -prune -exec rm -rf {} +
