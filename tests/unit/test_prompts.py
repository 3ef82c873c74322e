from wsd_llm import normalize_messages
from wsd_llm.prompts import base_prompt, draft_prompt, plain_prompt, with_bos, with_draft


class Model:
    def __init__(self, bos, template="<chat>{}</chat>"):
        self.bos_token, self.template = bos, template

    def apply_chat_template(self, messages):
        return self.template.format("|".join(m["content"] for m in messages))


CONVO = normalize_messages([
    {"role": "system", "content": " Be kind. "},
    {"role": "user", "content": "Hi\n"},
    {"role": "assistant", "content": " Hello! "},
    {"role": "user", "content": "How are you?"},
])


def test_plain_format_is_the_reference_format():
    assert plain_prompt(CONVO) == (
        "\n\n[System]\nBe kind.\n\n[User]\nHi\n\n[Assistant]\nHello!\n\n[User]\nHow are you?\n\n[Assistant]\n"
    )


def test_bos_is_prepended_once():
    assert with_bos("x", "<bos>") == "<bos>x"
    assert with_bos("<bos>x", "<bos>") == "<bos>x"
    assert with_bos("x", None) == "x"


def test_base_prompt_plain_gets_bos():
    assert base_prompt(Model("<bos>"), CONVO, "plain").startswith("<bos>\n\n[System]\nBe kind.")


def test_base_prompt_can_use_the_chat_template():
    assert base_prompt(Model("<s>"), CONVO, "chat_template") == "<s><chat> Be kind. |Hi\n| Hello! |How are you?</chat>"


def test_draft_prompt_keeps_a_template_that_starts_with_bos():
    assert draft_prompt(Model("<chat>"), CONVO).startswith("<chat> Be kind.")


def test_draft_is_stripped_and_the_whole_right_stripped():
    assert with_draft("P\n", "  Sure.  \n") == "P\nSure."
    assert with_draft("P\n", "   ") == "P"
