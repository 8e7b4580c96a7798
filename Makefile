# Two commands for users: `make run` and `make test`. Everything else is a step they share.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test install models index lint bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

models: install
	$(BIN)/rag models fetch

index: models
	$(BIN)/rag index

run: index
	$(BIN)/python ui.py

lint: install
	$(BIN)/ruff check .

test: models lint
	$(BIN)/python -m pytest -q

bench: models
	$(BIN)/python eval/bench.py

clean:
	rm -rf .index reports .pytest_cache
