# Two commands do all set-up on a fresh machine (Python 3.11, no GPU, no system packages):
#   make demo   - create .venv, install, run the DVC pipeline on the embedded demo corpus
#   make test   - create .venv, install (with test extras), lint (ruff) and run the whole test suite
#   make test-fast - the unit tests only (no whole DVC pipelines, real-data slices, SIGKILL, signal CV)
#   make exps   - the experiments table: changed params and test/dev scores (dvc exp show, narrowed)
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

.PHONY: demo test test-fast exps install clean

$(BIN)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or: make PYTHON=/path/to/python3.11 ...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-cache-dir -e '.[test]'
	touch $@

install: $(BIN)/.installed

demo: $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

test-fast: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m "not slow"

exps: $(BIN)/.installed
	$(BIN)/dvc exp show --only-changed --drop 'Created$$|model$$|pipeline$$|extractors$$|.*/'

clean:
	rm -rf $(VENV) data/demo data/prepared/manifest.csv data/prepared/manifest.meta.json data/prepared/errors.csv
