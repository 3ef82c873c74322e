"""WordLlamaEmbedding: the offline embedding model of the RAG tests and example (real shipped weights)."""

from __future__ import annotations

import numpy as np
from llama_index.llms.wsd import WordLlamaEmbedding


def cosine(a, b) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_related_texts_are_closer_than_unrelated_ones(embed_model):
    query = embed_model.get_query_embedding("When does the harbour festival take place?")
    near, far = embed_model.get_text_embedding_batch(
        ["The harbour festival takes place every March.", "Photosynthesis turns light into sugar."]
    )
    assert len(query) == 256
    assert cosine(query, near) > cosine(query, far)


def test_batches_match_single_texts_and_dimensions_can_be_truncated(embed_model):
    texts = ["one small text", "another one"]
    batch = embed_model.get_text_embedding_batch(texts)
    assert np.allclose(batch, [embed_model.get_text_embedding(t) for t in texts])
    assert len(WordLlamaEmbedding(trunc_dim=64).get_text_embedding("short")) == 64


async def test_async_query_embedding_matches_sync(embed_model):
    text = "a question"
    assert np.allclose(await embed_model.aget_query_embedding(text), embed_model.get_query_embedding(text))
