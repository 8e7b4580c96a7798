# Two commands for users: `make run` and `make test`. Everything else is a step they share.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# llama.cpp is built for the CPU it compiles on (GGML_NATIVE, AVX-512 where there is one: 1.6x the prompt speed
# of a portable AVX2 build here), but without AMX: a CPU may advertise AMX tile instructions that its virtual
# machine does not grant (seen here: SIGILL in prompt processing). Override with `make install LLAMA_CMAKE_ARGS=...`.
NO_AMX := $(if $(filter x86_64,$(shell uname -m)),-mno-amx-tile -mno-amx-int8 -mno-amx-bf16)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)'

.PHONY: run test install models index lint bench clean browser

# Each step says what it does and how long it takes; pip shows its own download bars and, while it compiles
# llama-cpp-python, a spinner on a terminal (a "still running" line a minute elsewhere).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "== [1/4] creating $(VENV) (a few seconds)"; $(PYTHON) -m venv $(VENV); }
	@echo "== [2/4] upgrading pip (under a minute)"
	$(BIN)/python -m pip install --upgrade --progress-bar on pip
	@echo "== [3/4] installing the project and its dependencies: first time about 10 minutes, mostly compiling"
	@echo "==       llama-cpp-python (about 7 minutes on 2 cores); later installs reuse pip's wheel cache (1-2 minutes)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@
	@echo "== installed"

install: $(STAMP)

models: install
	@echo "== [4/4] models: fetched once (about 3 minutes, with progress bars), then only verified (seconds)"
	$(BIN)/rag models fetch

index: models
	@echo "== indexing corpus/ if it changed (seconds for the five bundled documents)"
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
