"""The packaged pair's replies on local transformers models, as JSON, for the vLLM comparison.

    python tests/vllm_engine/local_replies.py OUTPUT.json '{"max_new_tokens": 48}' PROMPT [PROMPT ...]

Run by the vLLM tests with the main environment's python (WSD_LLM_LOCAL_PYTHON).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from wsd_llm import WSDConfig, WSDPipeline

if __name__ == "__main__":
    output, config, *prompts = sys.argv[1:]
    pipe = WSDPipeline.from_pretrained(config=WSDConfig(**json.loads(config)))
    replies = []
    for prompt in prompts:
        result = pipe.generate(prompt, logprobs=True)
        replies.append({"switch_index": result.switch_index, "switched": result.switched,
                        "draft_text": result.draft_text, "probs": result.probs,
                        "logprob_tokens": [entry.token for entry in result.logprobs]})
    Path(output).write_text(json.dumps(replies))
