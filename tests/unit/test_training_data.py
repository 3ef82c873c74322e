"""Preference records: every mistake is one line naming the line and the field, before any training."""

import json

import pytest
from tiny_models import tiny_draft_tokenizer

from wsd_llm.training.data import (
    PreferenceDataError,
    check_lengths,
    encode_reply,
    parse_record,
    read_preferences,
    split_eval,
)

GOOD = {"prompt": "How do I boil an egg?", "chosen": "Boil it for nine minutes.", "rejected": "Microwave it."}


def write(tmp_path, lines, name="prefs.jsonl"):
    path = tmp_path / name
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


@pytest.mark.parametrize(("bad", "message"), [
    ({"prompt": "Hi", "chosen": "Hello!"},
     "prefs.jsonl line 2: 'rejected' is missing; each record needs prompt, chosen and rejected"),
    ({**GOOD, "chosen": "  "}, "prefs.jsonl line 2: 'chosen' is empty"),
    ({**GOOD, "prompt": ""}, "prefs.jsonl line 2: 'prompt' is empty"),
    ({**GOOD, "rejected": GOOD["chosen"] + " "}, "prefs.jsonl line 2: 'chosen' and 'rejected' are the same reply"),
    ('{"prompt": "Hi", "chosen": "a" "rejected": "b"}', "prefs.jsonl line 2: not JSON (Expecting ',' delimiter"),
    ('["prompt", "chosen"]', "prefs.jsonl line 2: each record must be a JSON object"),
    ({**GOOD, "chosen": 3}, "prefs.jsonl line 2: 'chosen' must be a string or a message list, got int"),
    ({**GOOD, "chosen": [{"role": "user", "content": "x"}]},
     "prefs.jsonl line 2: 'chosen' as a message list must end with an assistant message"),
    ({**GOOD, "prompt": [{"role": "assistant", "content": "x"}]}, "prefs.jsonl line 2: 'prompt': the last message"),
    ({**GOOD, "system": 1}, "prefs.jsonl line 2: 'system' must be a string, got int"),
])
def test_a_bad_record_is_one_line_naming_its_line_and_field(tmp_path, bad, message):
    path = write(tmp_path, [GOOD, bad, GOOD])
    with pytest.raises(PreferenceDataError) as caught:
        read_preferences(path)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_blank_lines_are_skipped_and_an_empty_file_is_an_error(tmp_path):
    assert len(read_preferences(write(tmp_path, [GOOD, "", GOOD]))) == 2
    with pytest.raises(PreferenceDataError, match="prefs.jsonl has no preference records"):
        read_preferences(write(tmp_path, [""]))
    with pytest.raises(FileNotFoundError, match="no preference file at"):
        read_preferences(tmp_path / "missing.jsonl")


def test_strings_message_lists_and_a_system_message_give_the_same_conversation():
    plain = parse_record({**GOOD, "system": "Be kind."}, "x")
    listed = parse_record({"system": "Be kind.", "prompt": [{"role": "user", "content": GOOD["prompt"]}],
                           "chosen": [{"role": "assistant", "content": GOOD["chosen"]}],
                           "rejected": [{"role": "user", "content": "?"}, {"role": "assistant",
                                                                           "content": GOOD["rejected"]}]}, "x")
    assert plain == listed
    assert plain.prompt == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": GOOD["prompt"]}]
    assert plain.as_trl()["chosen"] == [{"role": "assistant", "content": GOOD["chosen"]}]


def test_a_pair_longer_than_max_length_names_its_line_reply_and_length(tmp_path):
    tokenizer = tiny_draft_tokenizer()
    long = {**GOOD, "rejected": "Microwave it, " * 30}
    pairs = read_preferences(write(tmp_path, [GOOD, long]))
    prompt_ids, reply_ids = encode_reply(tokenizer, pairs[1].prompt, pairs[1].rejected)
    length = len(prompt_ids) + len(reply_ids)
    check_lengths(pairs, tokenizer, max_length=length)
    with pytest.raises(PreferenceDataError) as caught:
        check_lengths(pairs, tokenizer, max_length=length - 1)
    assert str(caught.value) == (f"prefs.jsonl line 2: prompt + 'rejected' is {length} tokens, more than "
                                 f"--max-length {length - 1}; shorten the pair or raise --max-length")


def test_a_reply_is_encoded_as_the_chat_template_renders_it():
    tokenizer = tiny_draft_tokenizer()
    pair = parse_record(GOOD, "x")
    prompt_ids, reply_ids = encode_reply(tokenizer, pair.prompt, pair.chosen)
    assert tokenizer.decode(prompt_ids).endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(reply_ids) == GOOD["chosen"] + "<|im_end|>\n"


def test_a_dataset_directory_goes_through_datasets_load_dataset(tmp_path):
    folder = tmp_path / "generalign"
    folder.mkdir()
    write(folder, [GOOD, {**GOOD, "prompt": "Hi"}], name="train.jsonl")
    pairs = read_preferences(folder)
    assert [pair.prompt[-1]["content"] for pair in pairs] == [GOOD["prompt"], "Hi"]
    assert pairs[1].where == "generalign row 2"
    write(folder, [GOOD, {"prompt": "Hi", "chosen": "Hello", "rejected": "Hello"}], name="train.jsonl")
    with pytest.raises(PreferenceDataError, match="generalign row 2: 'chosen' and 'rejected' are the same"):
        read_preferences(folder)
    with pytest.raises(PreferenceDataError, match="cannot load preference data .*split"):
        read_preferences(folder, split="test")


def test_the_held_out_split_is_seeded_and_disjoint():
    pairs = [parse_record({**GOOD, "prompt": f"question {i}"}, f"line {i}") for i in range(20)]
    train, held = split_eval(pairs, 0.1, seed=3)
    assert len(held) == 2 and len(train) == 18 and not set(map(id, train)) & set(map(id, held))
    assert split_eval(pairs, 0.1, seed=3) == (train, held)
    assert split_eval(pairs, 0, seed=3) == (pairs, [])
    with pytest.raises(ValueError, match="--eval-fraction must be at least 0 and less than 1, got 1"):
        split_eval(pairs, 1, seed=3)


def test_a_hub_dataset_that_cannot_be_loaded_is_one_line():
    with pytest.raises(FileNotFoundError) as caught:
        read_preferences("wsd-llm-tests/no-such-preferences")
    assert str(caught.value).startswith("cannot load preference data 'wsd-llm-tests/no-such-preferences': give a "
                                        ".jsonl file, a dataset directory or a hub dataset id (")
    assert "\n" not in str(caught.value)


def test_a_json_array_file_goes_through_datasets_and_a_json_lines_file_line_by_line(tmp_path):
    array = tmp_path / "pairs.json"
    array.write_text(json.dumps([GOOD, {**GOOD, "rejected": GOOD["chosen"]}]))
    with pytest.raises(PreferenceDataError, match="pairs.json row 2: 'chosen' and 'rejected' are the same"):
        read_preferences(array)
    lines = write(tmp_path, [GOOD, GOOD], name="lines.json")
    assert [pair.where for pair in read_preferences(lines)] == ["lines.json line 1", "lines.json line 2"]
