# Two commands for users: `make run` and `make test`. Everything else is a step they share.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test install models index lint bench clean browser

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

# The UI tests drive Debian's headless Chromium; install it once if this machine lacks it (root only).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list | grep -qi "cjk" || \
	  { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	    apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null; } || \
	  echo "chromium/chromedriver missing: install Debian's chromium and chromium-driver for the UI tests"

test: models lint browser
	$(BIN)/python -m pytest -q

bench: models
	$(BIN)/python eval/bench.py

clean:
	rm -rf .index reports .pytest_cache
