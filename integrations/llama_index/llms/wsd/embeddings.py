"""WordLlama as a LlamaIndex embedding model: small static embeddings that run offline on CPU.

The ``wordllama`` package ships its default weights, so a RAG pipeline with WSD needs no
download at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import wordllama
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from wordllama import WordLlama


class WordLlamaEmbedding(BaseEmbedding):
    """WordLlama embeddings (``l2_supercat``, 256 dimensions, shipped inside the package)."""

    model_name: str = Field("l2_supercat", description="WordLlama configuration.")
    dim: int = Field(256, gt=0, description="Width of the weights to load.")
    trunc_dim: int | None = Field(None, gt=0, description="Keep only the first dimensions (Matryoshka).")

    _model: Any = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Looks in the package first; disable_download keeps it offline and fails clearly instead.
        self._model = WordLlama.load(
            config=self.model_name,
            dim=self.dim,
            trunc_dim=self.trunc_dim,
            cache_dir=Path(wordllama.__file__).parent,
            disable_download=True,
        )

    @classmethod
    def class_name(cls) -> str:
        return "wordllama_embedding"

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._model.embed(texts, norm=True).tolist()

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._get_text_embedding(query)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        # Static embeddings are a table look-up and a mean: too quick to be worth a thread.
        return self._get_query_embedding(query)
