"""Supervised fine-tuning on chat examples: the loss counts only the assistant's final answer.

An example is `{"messages": [{"role", "content"}, ...]}` ending with an assistant turn, or the
shorthand `{"prompt": ..., "response": ...}` / `{"instruction", "input", "output"}` (Alpaca). Each is
rendered with the chat template; the prompt part's labels are -100, so the model learns to answer,
including the end-of-turn marker that tells it to stop, not to repeat questions.

Which marker ends the answer (`answer_end`): the template's own turn end (`template`, the default), or
the tokenizer's EOS right after the answer (`eos`). A built-in template put on a base model
(`chat_template: gemma` on Gemma 3 270M base) ends turns with a token the base never learned: Gemma's
`<end_of_turn>` embedding is one of a cluster of untrained rows (cosine 0.99 with `<unused…>`, `𒌒`,
`slotBox`), and with tied embeddings and LoRA the model cannot single it out. Its probability spreads
over the cluster, greedy decoding never picks it, so the model never stops: the next most likely token
follows the answer, `\n` and a repeat when trained on answers alone, the refusal sentence (`50Hz资料中
没有找到相关内容。𒌒`) once refusal examples are mixed in (docs/kb.md). The base model's EOS is trained
(every pretraining document ends with it), and every engine stops on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal

from pydantic import Field

from wattlm.errors import WattError
from wattlm.train.methods.base import MethodSettings, SharedSettings, StepLoss, TrainingMethod
from wattlm.train.templates import resolve_template

IGNORE = -100


def to_messages(example: dict, index: int) -> list[dict]:
    if "messages" in example:
        messages = example["messages"]
    elif "prompt" in example and "response" in example:
        messages = [{"role": "user", "content": example["prompt"]}, {"role": "assistant", "content": example["response"]}]
    elif "instruction" in example and "output" in example:
        prompt = example["instruction"] + (f"\n\n{example['input']}" if example.get("input") else "")
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": example["output"]}]
    else:
        raise WattError(f"sft example {index}: expected 'messages', 'prompt'+'response' or 'instruction'+'output'")
    if not messages or messages[-1].get("role") != "assistant":
        raise WattError(f"sft example {index}: the last message must be the assistant's answer")
    return messages


class SftSettings(MethodSettings):
    chat_template: str | None = Field(
        None, description="sft (and distill on chat data): 'chatml', 'gemma' or Jinja text, for parents without a "
        "template; saved with the model."
    )
    answer_end: Literal["template", "eos"] = Field(
        "template", description="sft: what the answer's labels end with: the template's end-of-turn marker, or "
        "the tokenizer's EOS right after the answer ('eos': for a built-in template on a base model, whose "
        "end-of-turn token is untrained; see train/methods/sft.py)."
    )


class SftMethod(TrainingMethod):
    name = "sft"
    Settings = SftSettings
    examples = "records"

    def __init__(self, tokenizer, examples: Sequence[dict], config: SharedSettings, replay_texts: Sequence[str] = (),
                 settings: SftSettings | None = None):
        import torch

        super().__init__(tokenizer, examples, config, replay_texts, settings)
        self.template = resolve_template(tokenizer, self.settings.chat_template)
        tokenizer.chat_template = self.template  # saved with the model: the export and server use it
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.eos_id = tokenizer.eos_token_id
        if self.settings.answer_end == "eos" and self.eos_id is None:
            raise WattError("answer_end: eos needs a tokenizer with an EOS token; this one has none")
        self.rows = [self.encode(tokenizer, to_messages(ex, i), config.seq_len) for i, ex in enumerate(examples)]
        if not self.rows:
            raise WattError("sft needs at least one example")
        self.generator = torch.Generator().manual_seed(config.seed)

    def encode(self, tokenizer, messages: list[dict], max_len: int) -> tuple[list[int], list[int]]:
        """(input ids, labels) with the prompt masked; truncated to max_len tokens."""
        prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True,
                                               chat_template=self.template)
        full = tokenizer.apply_chat_template(messages, tokenize=False, chat_template=self.template)
        if not full.startswith(prompt):
            raise WattError("the chat template renders the prompt differently inside the full conversation")
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer = full[len(prompt):]
        if self.settings.answer_end == "eos":
            answer_ids = tokenizer(self._answer_text(answer, messages[-1]["content"]), add_special_tokens=False)["input_ids"]
            answer_ids.append(self.eos_id)
        else:
            answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        ids = (prompt_ids + answer_ids)[:max_len]
        labels = ([IGNORE] * len(prompt_ids) + answer_ids)[:max_len]
        return ids, labels

    @staticmethod
    def _answer_text(rendered: str, content: str) -> str:
        """The answer as the template renders it, without the turn end that follows it."""
        said = content.strip()
        at = rendered.find(said)
        if not said or at < 0:
            raise WattError("answer_end: eos needs the template to render the answer's text as given")
        return rendered[:at + len(said)]

    def batches(self) -> Iterator:
        import torch

        def indices():  # every epoch visits each example once, in a seeded order
            while True:
                yield from torch.randperm(len(self.rows), generator=self.generator).tolist()

        order = indices()
        while True:
            # Always full batches (the epoch boundary falls inside one): every step weighs the same, and
            # data-parallel processes always get rows to work on.
            chosen = [self.rows[next(order)] for _ in range(self.config.batch_size)]
            width = max(len(ids) for ids, _ in chosen)
            # Right padding: a causal model's earlier positions never see it, and its labels are ignored.
            ids = torch.full((len(chosen), width), self.pad_id, dtype=torch.long)  # (batch, width)
            labels = torch.full((len(chosen), width), IGNORE, dtype=torch.long)  # (batch, width)
            for row, (row_ids, row_labels) in enumerate(chosen):
                ids[row, : len(row_ids)] = torch.tensor(row_ids)
                labels[row, : len(row_labels)] = torch.tensor(row_labels)
            yield ids, labels

    def stats(self) -> dict:
        return {"examples": len(self.rows), "tokens": sum(len(ids) for ids, _ in self.rows),
                "answer_tokens": sum(sum(label != IGNORE for label in labels) for _, labels in self.rows),
                "truncated_to_seq_len": sum(len(ids) == self.config.seq_len for ids, _ in self.rows)}

    def loss(self, model, batch) -> StepLoss:
        from wattlm.train.head_loss import causal_lm_loss

        ids, labels = batch
        nll, n_targets = causal_lm_loss(model, ids, chunk=self.config.loss_chunk, labels=labels)
        return StepLoss(nll, n_targets, ids.numel())  # throughput counts every processed position
