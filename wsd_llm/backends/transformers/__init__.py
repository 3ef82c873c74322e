"""Local models through transformers: the model and its KV-cache sessions (``model``), padded
batches (``padded``), the one-shot reference order (``one_shot``), and GGUF conversion
(``conversion``, which needs no torch: the remote backends use it for tokenizers)."""
