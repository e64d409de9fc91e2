"""SFT: chat-formatted examples, loss on the answer only, the template saved with the model."""

import pytest
from transformers import AutoTokenizer

from wattlm.errors import WattError
from wattlm.train.config import TrainConfig
from wattlm.train.loop import train
from wattlm.train.methods.sft import IGNORE, SftMethod, to_messages
from wattlm.train.templates import CHATML

EXAMPLES = [
    {"prompt": "What does a Buchholz relay protect?", "response": "An oil-filled transformer, against internal faults."},
    {"instruction": "Name the ticket for switching.", "output": "The switching operation ticket."},
    {"messages": [{"role": "system", "content": "You are a dispatcher."},
                  {"role": "user", "content": "Frequency is 49.8 Hz. Action?"},
                  {"role": "assistant", "content": "Raise generation or shed load."}]},
    {"prompt": "Before grounding a line you must?", "response": "Verify that it is de-energised."},
]


def test_prompt_is_masked_and_answer_ends_with_turn_marker(tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    method = SftMethod(tokenizer, EXAMPLES, TrainConfig(method="sft", seq_len=128, chat_template="chatml"))
    ids, labels = method.rows[0]
    scored = [i for i, label in zip(ids, labels, strict=True) if label != IGNORE]
    assert labels[0] == IGNORE and scored
    answer = tokenizer.decode(scored)
    assert answer.startswith("An oil-filled transformer") and answer.rstrip().endswith("<|im_end|>")
    assert "Buchholz" not in answer
    batch_ids, batch_labels = next(method.batches())
    assert batch_ids.shape == batch_labels.shape and batch_ids.size(0) == 4


def test_sft_learns_answers_and_saves_template(tiny_model_dir, tmp_path):
    config = TrainConfig(method="sft", chat_template="chatml", steps=25, seq_len=96, batch_size=4, lr=5e-3,
                         warmup_steps=1, bf16=False, lora=None)  # a random tiny model learns faster with all weights
    result = train(tiny_model_dir, EXAMPLES, tmp_path, config, progress=False)
    assert result.metrics()["train_loss_end"] < result.metrics()["train_loss_start"] - 1.0
    assert AutoTokenizer.from_pretrained(tmp_path).chat_template == CHATML


def test_bad_examples_and_missing_template_are_named(tokenizer_dir):
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    with pytest.raises(WattError, match="sft example 1"):
        to_messages({"question": "?"}, 1)
    with pytest.raises(WattError, match="last message must be the assistant"):
        to_messages({"messages": [{"role": "user", "content": "hi"}]}, 0)
    tokenizer.chat_template = None
    with pytest.raises(WattError, match="train.chat_template"):
        SftMethod(tokenizer, EXAMPLES, TrainConfig(method="sft"))


def test_answer_end_eos_ends_the_labels_at_the_tokenizers_eos(tokenizer_dir):
    """A built-in template on a base model: the answer ends at EOS, not at a turn marker the base never learned."""
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = TrainConfig(method="sft", seq_len=128, chat_template="chatml", answer_end="eos")
    method = SftMethod(tokenizer, EXAMPLES, config)
    for (ids, labels), example in zip(method.rows, EXAMPLES, strict=True):
        scored = [label for label in labels if label != IGNORE]
        answer = example.get("response") or example.get("output") or example.get("messages", [{}])[-1].get("content")
        assert scored[-1] == tokenizer.eos_token_id and ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(scored[:-1]) == answer.strip()  # the answer alone: no <|im_end|>, no newline
    template_end = SftMethod(tokenizer, EXAMPLES, TrainConfig(method="sft", seq_len=128, chat_template="chatml"))
    assert tokenizer.decode([label for label in template_end.rows[0][1] if label != IGNORE]).rstrip().endswith("<|im_end|>")
