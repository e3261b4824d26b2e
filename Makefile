# Two commands do all set-up on a fresh machine (Python 3.11, no GPU, no system packages):
#   make demo   - create .venv, install, run the DVC pipeline on the embedded demo corpus
#   make test   - create .venv, install (with test extras), lint (ruff) and run the whole test suite
#   make test-fast - the unit tests only (no whole DVC pipelines, real-data slices, SIGKILL, signal CV)
#   make gpu-check - on a machine with a GPU: the CUDA tests, then training and extraction speed
#   make exps   - the experiments table: changed params and test/dev scores (dvc exp show, narrowed)
#   make install-benchmark - also the benchmark's mpnet encoder (requirements/benchmark-lock.txt)
#   make lock   - refresh the locks from pyproject.toml's ranges (newest versions), then commit them
# Every install is of the exact versions and hashes in requirements/*lock.txt (Linux x86_64,
# CPython 3.11): the same bytes from the same command. UNLOCKED=1 installs pyproject's ranges instead
# (another platform; the results may then differ in the last bits from the committed dvc.lock).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1

LOCK   := requirements/lock.txt
BENCHMARK_LOCK := requirements/benchmark-lock.txt
PIP    := $(BIN)/python -m pip install --quiet --no-cache-dir

# make exps hides dates, seed spreads and the code/data dependencies (tests/test_dvc_pipeline.py reads this)
EXP_DROP := Created$$|_std$$|model$$|pipeline$$|extractors$$|.*/

.PHONY: demo test test-fast gpu-check exps install install-benchmark lock clean

$(BIN)/.installed: pyproject.toml $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH (or: make PYTHON=/path/to/python3.11 ...)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifeq ($(UNLOCKED),1)
	$(PIP) -e '.[test]'
else
	$(PIP) --require-hashes -r $(LOCK)
	$(PIP) --no-deps --no-build-isolation -e .
endif
	touch $@

install: $(BIN)/.installed

install-benchmark: $(BIN)/.installed
	$(PIP) --require-hashes -r $(BENCHMARK_LOCK)

# pip-tools in a throwaway venv; the benchmark lock is constrained to the main one (same versions).
LOCK_TOOL := build/lock-venv/bin
COMPILE := $(LOCK_TOOL)/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links
lock:
	test -x $(LOCK_TOOL)/pip-compile || { $(PYTHON) -m venv build/lock-venv && \
	  $(LOCK_TOOL)/python -m pip install --quiet pip-tools==7.6.2; }
	$(COMPILE) --extra test -o $(LOCK) pyproject.toml
	$(COMPILE) --extra test --extra benchmark -c $(LOCK) -o $(BENCHMARK_LOCK) pyproject.toml

demo: $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

# Test modules spread over TEST_WORKERS processes (pytest-xdist; a module's tests stay together,
# so its fixtures are built once). 0: one process, as plain pytest.
TEST_WORKERS ?= 2
PYTEST := $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(PYTEST)

test-fast: $(BIN)/.installed
	$(PYTEST) -m "not slow"

# docs/gpu.md: what each step proves. The extraction figures need the demo's manifest (make demo).
gpu-check: $(BIN)/.installed
	$(BIN)/python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device here'; \
	  print(torch.cuda.get_device_name(0), 'torch', torch.__version__)"
	$(BIN)/python -m pytest -q -rs -m cuda
	$(BIN)/python benchmarks/train_speed.py --device cuda --epochs 3
	test -d data/prepared || PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro prepare
	$(BIN)/python benchmarks/extract_speed.py --device cuda --scales 1

exps: $(BIN)/.installed
	$(BIN)/dvc exp show --no-pager --only-changed --precision 4 --drop '$(EXP_DROP)'

clean:
	rm -rf $(VENV) data/demo data/prepared/manifest.csv data/prepared/manifest.meta.json data/prepared/errors.csv
