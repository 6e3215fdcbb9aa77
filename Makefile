# Two entry points, both self-contained on a fresh machine with Python >= 3.11 and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: quickstart test install bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/hydraquant --lake ./lake quickstart

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=15

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	for script in ingest bars features labels backtest; do $(BIN)/python bench/$$script.py || exit 1; done

clean:
	rm -rf $(VENV) lake .pytest_cache
