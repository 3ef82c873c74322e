"""Preference data for training a drafter: GenerAlign-style ``prompt``/``chosen``/``rejected`` records.

A record's ``prompt`` is a string (one user turn) or a conversation ending with a user turn;
``chosen`` and ``rejected`` are reply strings, or message lists whose last message is the
assistant's reply; an optional ``system`` string starts the conversation. Every record is
checked, and every pair measured with the model's own tokenizer and chat template, before any
training starts: a bad line fails at once with one line naming it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wsd_llm.messages import Message, normalize_messages
from wsd_llm.text import common_prefix_length

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

REPLIES = ("chosen", "rejected")
_FILE_SUFFIXES = (".jsonl", ".json")


class PreferenceDataError(ValueError):
    """A preference record that cannot be trained on; the message names the line and the field."""


@dataclass(frozen=True)
class PreferencePair:
    """One preference: for ``prompt``, the reply ``chosen`` is better than ``rejected``.

    Attributes:
        prompt: the conversation, ending with the user turn the replies answer.
        chosen: the preferred assistant reply.
        rejected: the dispreferred assistant reply.
        where: where the record came from, for messages (``prefs.jsonl line 3``).
    """

    prompt: list[Message]
    chosen: str
    rejected: str
    where: str

    def as_trl(self) -> dict[str, list[Message]]:
        """The record in TRL's conversational preference format (replies as assistant turns)."""
        return {"prompt": self.prompt, **{key: [_assistant(getattr(self, key))] for key in REPLIES}}


def _assistant(content: str) -> Message:
    return {"role": "assistant", "content": content}


def parse_record(record: Any, where: str) -> PreferencePair:
    """Check one record and return it as a pair.

    Raises:
        PreferenceDataError: a missing, empty or malformed field, or identical replies; the
            message starts with ``where``.
    """
    if not isinstance(record, dict):
        raise PreferenceDataError(f"{where}: each record must be a JSON object with prompt, chosen and rejected")
    try:
        for key in ("prompt", *REPLIES):
            if key not in record:
                raise ValueError(f"'{key}' is missing; each record needs prompt, chosen and rejected")
        replies = [_reply(record[key], key) for key in REPLIES]
        if replies[0].strip() == replies[1].strip():
            raise ValueError("'chosen' and 'rejected' are the same reply; a pair must prefer one reply to another")
        prompt = _prompt(record["prompt"], record.get("system"))
    except ValueError as error:
        raise PreferenceDataError(f"{where}: {error}") from None
    return PreferencePair(prompt, replies[0], replies[1], where)


def _reply(value: Any, key: str) -> str:
    if isinstance(value, list):  # a message list: the reply is its last, assistant, message
        if not value or not isinstance(value[-1], dict) or value[-1].get("role") != "assistant":
            raise ValueError(f"'{key}' as a message list must end with an assistant message")
        value = value[-1].get("content")
    if not isinstance(value, str):
        raise ValueError(f"'{key}' must be a string or a message list, got {type(value).__name__}")  # noqa: TRY004
    if not value.strip():
        raise ValueError(f"'{key}' is empty")
    return value


def _prompt(value: Any, system: Any) -> list[Message]:
    if isinstance(value, str) and not value.strip():
        raise ValueError("'prompt' is empty")
    if system is not None and not isinstance(system, str):
        raise ValueError(f"'system' must be a string, got {type(system).__name__}")
    try:
        messages = normalize_messages(value)
    except ValueError as error:
        raise ValueError(f"'prompt': {error}") from None
    if system and messages[0]["role"] != "system":
        messages = [{"role": "system", "content": system}, *messages]
    return messages


def read_preferences(source: str | Path, *, split: str = "train") -> list[PreferencePair]:
    """Every pair of a JSONL/JSON file, a dataset directory or a hub dataset id, all checked.

    A ``.jsonl`` file is read line by line (a line that is not JSON names its line number);
    anything else goes through ``datasets.load_dataset`` (``split`` picks the split).

    Raises:
        PreferenceDataError: a bad record (naming its line or row), or no records at all.
        FileNotFoundError: a path with a data-file suffix that does not exist.
    """
    path = Path(source)
    if path.suffix == ".jsonl" or (path.suffix == ".json" and _is_jsonl(path)):
        pairs = list(_read_jsonl(path))
    elif path.suffix in _FILE_SUFFIXES and not path.exists():
        raise FileNotFoundError(f"no preference file at {path}")
    else:
        pairs = [parse_record(row, f"{path.name} row {number}")
                 for number, row in enumerate(_load_dataset(str(source), split), start=1)]
    if not pairs:
        raise PreferenceDataError(f"{path.name} has no preference records")
    return pairs


def _is_jsonl(path: Path) -> bool:
    """A ``.json`` file holding one object per line rather than one JSON document."""
    if not path.is_file():
        return False
    with path.open(encoding="utf-8") as handle:
        return handle.read(1).strip() == "{"


def _read_jsonl(path: Path) -> Iterable[PreferencePair]:
    if not path.is_file():
        raise FileNotFoundError(f"no preference file at {path}")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise PreferenceDataError(f"{where}: not JSON ({error.msg} at column {error.colno})") from None
            yield parse_record(record, where)


def _load_dataset(source: str, split: str) -> Any:
    """A dataset directory, a JSON file or a hub id through the ``datasets`` library."""
    import datasets

    from wsd_llm.hub import offline_unless_reachable

    if not Path(source).exists() and offline_unless_reachable():
        datasets.config.HF_HUB_OFFLINE = True  # read from the environment only when datasets is imported
    # A JSON file (an array of records) is read by the json builder; anything else names a dataset.
    builder, files = ("json", source) if Path(source).is_file() else (source, None)
    try:
        return datasets.load_dataset(builder, data_files=files, split=split)
    except (OSError, datasets.exceptions.DatasetNotFoundError) as error:  # ConnectionError is an OSError
        raise FileNotFoundError(
            f"cannot load preference data {source!r}: give a .jsonl file, a dataset directory or a hub "
            f"dataset id ({' '.join(str(error).split())})") from None
    except ValueError as error:  # e.g. an unknown split
        raise PreferenceDataError(f"cannot load preference data {source!r}: {' '.join(str(error).split())}") from None


def encode_reply(tokenizer: PreTrainedTokenizerBase, prompt: Sequence[Message], reply: str) -> tuple[list[int], list[int]]:
    """Prompt ids and reply ids as TRL's ``DPOTrainer`` cuts them from the chat template.

    The prompt is rendered with the generation prompt, the conversation with the reply as the
    last assistant turn; the reply is what follows their common prefix (the template's
    end-of-turn tokens included), so a drafter is trained and scored on the same tokens.

    Raises:
        ValueError: a tokenizer without a chat template.
    """
    if not tokenizer.chat_template:
        raise ValueError("the model's tokenizer has no chat template; train an instruct model as the drafter")
    prompt_ids = _chat_ids(tokenizer, list(prompt), add_generation_prompt=True)
    full_ids = _chat_ids(tokenizer, [*prompt, _assistant(reply)], add_generation_prompt=False)
    start = common_prefix_length(prompt_ids, full_ids)
    return full_ids[:start], full_ids[start:]


def _chat_ids(tokenizer: PreTrainedTokenizerBase, messages: list[Message], add_generation_prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                            add_generation_prompt=add_generation_prompt)
    return list(encoded["input_ids"])


def check_lengths(pairs: Sequence[PreferencePair], tokenizer: PreTrainedTokenizerBase, max_length: int) -> None:
    """Make sure prompt + reply fits ``max_length`` tokens for both replies of every pair.

    Raises:
        PreferenceDataError: the first pair that does not fit, naming its line, the reply and its length.
    """
    for pair in pairs:
        for key in REPLIES:
            prompt_ids, reply_ids = encode_reply(tokenizer, pair.prompt, getattr(pair, key))
            length = len(prompt_ids) + len(reply_ids)
            if length > max_length:
                raise PreferenceDataError(
                    f"{pair.where}: prompt + '{key}' is {length} tokens, more than --max-length {max_length}; "
                    "shorten the pair or raise --max-length")


def split_eval(pairs: Sequence[PreferencePair], fraction: float, seed: int) -> tuple[list[PreferencePair],
                                                                                      list[PreferencePair]]:
    """A seeded random held-out split: ``(train, held_out)``, at least one pair in each when ``fraction > 0``.

    Raises:
        ValueError: ``fraction`` outside [0, 1), or too few pairs to hold any out.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"--eval-fraction must be at least 0 and less than 1, got {fraction}")
    if fraction == 0:
        return list(pairs), []
    if len(pairs) < 2:
        raise ValueError(f"{len(pairs)} pair cannot be split for evaluation; give --eval-data or --eval-fraction 0")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    held = max(1, min(len(pairs) - 1, round(len(pairs) * fraction)))
    held_out = set(order[:held])
    return ([pair for i, pair in enumerate(pairs) if i not in held_out],
            [pair for i, pair in enumerate(pairs) if i in held_out])
