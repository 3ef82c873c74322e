#!/usr/bin/env bash
# The vLLM benchmark on a CUDA machine, in one command, with a 1-2B pair (set DRAFT and BASE to
# others: hub ids, directories or .gguf files):
#
#   bash benchmarks/gpu.sh            # writes benchmarks/gpu-results.md
#
# It makes its own environment (vLLM pins its own torch and transformers), then runs
# benchmarks/bench_vllm.py: the exactness table (vLLM engines vs local transformers on the GPU)
# and the throughput table (WSD, the one-shot order and the base alone, ROWS conversations at once).
set -euo pipefail
cd "$(dirname "$0")/.."
DRAFT=${DRAFT:-HuggingFaceTB/SmolLM2-360M-Instruct}
BASE=${BASE:-Qwen/Qwen2.5-1.5B}
ROWS=${ROWS:-64}
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-256}
VENV=${VENV:-.venv-gpu}
OUTPUT=${OUTPUT:-benchmarks/gpu-results.md}

test -x "$VENV/bin/python" || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet "${VLLM_PACKAGE:-vllm}"
"$VENV/bin/pip" install --quiet -e ".[server]"
"$VENV/bin/python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: this script is for a GPU machine'"
cd benchmarks
"../$VENV/bin/python" bench_vllm.py --draft "$DRAFT" --base "$BASE" --rows "$ROWS" \
    --max-new-tokens "$MAX_NEW_TOKENS" --output "../$OUTPUT" "$@"
