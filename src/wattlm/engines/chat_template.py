"""Chat templates from GGUF metadata, rendered the way transformers' `apply_chat_template` does.

Shared by every llama.cpp engine so that the simple and the batching engine build the same prompt;
`plain_transcript` is the fallback for engines that have no templates at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from wattlm.engines.params import ChatTurn
from wattlm.errors import WattError


class ChatTemplate:
    """A jinja chat template bound to a model's BOS/EOS text."""

    def __init__(self, template: str, bos_token: str, eos_token: str, model_name: str) -> None:
        # Jinja2ChatFormatter renders like transformers (sandboxed jinja, messages + bos/eos_token +
        # add_generation_prompt=True), so served prompts match the prompts a model was tuned on.
        from jinja2 import TemplateError
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._model_name = model_name
        try:
            self._formatter = Jinja2ChatFormatter(template=template, bos_token=bos_token, eos_token=eos_token)
        except TemplateError as error:
            raise WattError(f"chat template of '{model_name}' is not valid jinja: {error}") from error

    def render(self, messages: Sequence[ChatTurn]) -> str:
        from jinja2 import TemplateError

        turns = [{"role": turn.role, "content": turn.content} for turn in messages]
        try:
            return self._formatter(messages=turns).prompt
        # ValueError is the template's own raise_exception(), e.g. "roles must alternate".
        except (ValueError, TemplateError) as error:
            raise WattError(f"chat template of '{self._model_name}' rejected the messages: {error}") from error


def plain_transcript(messages: Sequence[ChatTurn]) -> str:
    """A conversation as plain text, for engines without the `ChatTemplates` capability: one
    `role: content` line per turn, then `assistant:` for the reply (what a base model continues best)."""
    return "".join(f"{turn.role}: {turn.content}\n" for turn in messages) + "assistant:"
