"""GGUF files load slowly in transformers (every tensor is de-quantized on load), so the first
load writes a safetensors copy under the wsd-llm cache and later loads read that copy."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)

_FINGERPRINT_BYTES = 1 << 20


def cache_home() -> Path:
    """Where wsd-llm keeps converted models: ``$WSD_LLM_CACHE``, else ``$XDG_CACHE_HOME/wsd-llm``."""
    if env := os.environ.get("WSD_LLM_CACHE"):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(xdg).expanduser() / "wsd-llm"


def fingerprint(path: Path) -> str:
    """A cheap content key: size plus the first and last MiB (a GGUF header names its tensors)."""
    size = path.stat().st_size
    digest = hashlib.blake2b(f"{path.name}:{size}".encode(), digest_size=8)
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_BYTES))
        handle.seek(max(size - _FINGERPRINT_BYTES, 0))
        digest.update(handle.read(_FINGERPRINT_BYTES))
    return digest.hexdigest()


def converted_path(gguf_path: Path) -> Path:
    """Where the safetensors copy of ``gguf_path`` is (or will be) kept."""
    return cache_home() / "converted" / f"{gguf_path.stem}-{fingerprint(gguf_path)}"


def converted_dir(gguf_path: Path) -> Path:
    """The safetensors copy of ``gguf_path``, converting it first if there is none yet."""
    target = converted_path(gguf_path)
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("Converting %s to safetensors once; the copy goes to %s", gguf_path.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # The weights are de-quantized already; without this, save_pretrained refuses a GGUF model.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        os.replace(staging, target)
    except OSError:
        if not (target / "config.json").is_file():
            raise
        # Another process finished the same conversion first; its copy is as good as ours.
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("Saved the converted copy of %s in %s", gguf_path.name, target)
    return target
