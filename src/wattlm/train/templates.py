"""Chat templates a recipe can name for a base model that has none (Gemma 3 270M base ships none).

The chosen template is stored in the trained model's tokenizer, so the GGUF export carries it as
`tokenizer.chat_template` and `watt serve` can answer chat requests for the task model.
"""

from __future__ import annotations

from wattlm.errors import WattError

# ChatML, as used by SmolLM2, Qwen and many others; end of turn is <|im_end|>.
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Gemma's turn markers (the tokens exist in Gemma's vocabulary); system text goes into a user turn.
GEMMA = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else 'user' %}"
    "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)

BUILTIN = {"chatml": CHATML, "gemma": GEMMA}


def resolve_template(tokenizer, requested: str | None) -> str:
    """The template to train with: the recipe's choice (a built-in name or Jinja text), else the tokenizer's."""
    if requested:
        return BUILTIN.get(requested, requested)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.chat_template
    raise WattError(
        "sft needs a chat template: the parent model has none; set train.chat_template to one of "
        f"{sorted(BUILTIN)} or to a Jinja template"
    )
