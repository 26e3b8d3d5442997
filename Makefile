# mlcourse: the two commands are `make lab` (open the course) and `make test` (run every test).
# Both create .venv when it is missing and install the course into it (again only when
# pyproject.toml changes), then compile the ISM and SIS kernels into numba's cache (NUMBA_STAMP).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
EXTRAS := test,instructor

.PHONY: lab test run findings bench install lint clean site

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $(STAMP)

# numba's disk cache of the ISM and SIS kernels (mlcourse/interpret/__pycache__), filled once here rather
# than by the first lecture or test processes that use them, each compiling on its own
# (python -m mlcourse.numba_cache: about 9 s of CPU); again whenever a kernel's source changes.
NUMBA_STAMP := $(VENV)/.numba-stamp
$(NUMBA_STAMP): $(STAMP) mlcourse/numba_cache.py $(wildcard mlcourse/interpret/compiled.py mlcourse/interpret/*_kernel.py)
	OMP_NUM_THREADS=1 $(BIN)/python -m mlcourse.numba_cache
	touch $(NUMBA_STAMP)

install: $(NUMBA_STAMP)

lab: $(NUMBA_STAMP)
	$(BIN)/mlcourse lab

test: $(NUMBA_STAMP)
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 MLCOURSE_FAST=1 $(BIN)/python -m pytest -n auto

run: $(STAMP)
	$(BIN)/mlcourse run

# Every lecture in full mode (as a student runs it; 25 min on 2 cores when measured, see data/findings.json): each lecture's findings
# and runtime go to build/findings.md; fails if a finding does not hold.
findings: $(STAMP)
	$(BIN)/mlcourse run --findings

# The course website in build/site (see README, "Website"). Lectures come executed from build/
# (`make findings`, `make run`); the ones missing are run here. SITE_FLAGS=--fast runs them in FAST mode.
SITE_STAMP := $(VENV)/.site-stamp
$(SITE_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS),site]"
	touch $(SITE_STAMP)

site: $(SITE_STAMP)
	$(BIN)/mlcourse site $(SITE_FLAGS)

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf build .pytest_cache
