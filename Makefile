# The two commands a newcomer types: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= scaleprof-out

.PHONY: setup demo test browser bench clean

# torch and torchvision are pinned to the builds this machine serves from its disk (Python 3.11).
# '.[dev]' brings pytest and tensorrt-rtx (~95 MB): the tests build real TensorRT-RTX plans, no GPU needed.
$(BIN)/scaleprof: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

setup: $(BIN)/scaleprof

demo: setup
	$(BIN)/scaleprof demo -o $(OUT)

# Headless Chromium renders the HTML report in the browser test (Debian package).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium could not be installed: the browser test will skip"

test: setup browser
	$(BIN)/python -m pytest -q tests

# Speed and memory figures: printed, never asserted.
bench: setup
	for f in benchmarks/bench_*.py; do $(BIN)/python -m benchmarks.$$(basename $$f .py) || exit 1; done

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
