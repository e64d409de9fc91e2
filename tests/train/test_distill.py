"""Logit distillation on tiny models: the student moves toward the teacher on text it never saw."""

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from wattlm.errors import WattError
from wattlm.models.hf import load_causal_lm
from wattlm.shared.lm import pack, tokenize_stream
from wattlm.train.config import LoraSettings, TrainConfig
from wattlm.train.kd_loss import causal_lm_distill
from wattlm.train.loop import train

TEXTS = ["The breaker trips when the relay sees an overcurrent on feeder seven. " * 6,
         "Dispatchers balance load and generation every minute of the day. " * 6,
         "Transformers are cooled by oil that circulates through radiators. " * 6] * 3
HELD_OUT = ["The relay on feeder nine trips the breaker when it sees an overcurrent. " * 4,
            "Generation and load are balanced by the dispatchers every day. " * 4]


def _make_model(tokenizer_dir, out, hidden, layers, vocab=None, seed=1):
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=vocab or len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def teacher_dir(tiny_model_dir, tmp_path_factory):
    """The tiny Llama after continued pretraining on the domain: a teacher with something to teach."""
    out = tmp_path_factory.mktemp("teacher")
    train(tiny_model_dir, TEXTS, out, TrainConfig(steps=25, seq_len=32, batch_size=4, lr=5e-3, warmup_steps=1,
                                                  bf16=False, lora=None), progress=False)
    return out


@pytest.fixture(scope="module")
def student_dir(tokenizer_dir, tmp_path_factory):
    """A smaller, different student (1 layer, width 32) with the teacher's vocabulary."""
    return _make_model(tokenizer_dir, tmp_path_factory.mktemp("student"), hidden=32, layers=1)


def held_out_kl(student_dir, teacher_dir) -> float:
    """Mean KL(teacher || student) per position (T = 1) on held-out text."""
    student, teacher = load_causal_lm(student_dir), load_causal_lm(teacher_dir)
    ids = pack(tokenize_stream(AutoTokenizer.from_pretrained(student_dir), HELD_OUT), 32)
    with torch.no_grad():
        parts = causal_lm_distill(student, teacher, ids, vocab=teacher.config.vocab_size, temperature=1.0,
                                  alpha=1.0, chunk=64)
    return parts.kl.item() / parts.n_scored


def _config(teacher, **kw):
    base = dict(method="distill", teacher=str(teacher), steps=30, seq_len=32, batch_size=4, lr=5e-3,
                warmup_steps=1, bf16=False, lora=None, kd_temperature=2.0, kd_alpha=0.9)
    return TrainConfig(**{**base, **kw})


def test_distillation_reduces_held_out_kl(teacher_dir, student_dir, tmp_path):
    before = held_out_kl(student_dir, teacher_dir)
    result = train(student_dir, TEXTS, tmp_path, _config(teacher_dir), progress=False)
    after = held_out_kl(tmp_path, teacher_dir)
    # The same run with kd_alpha = 0 is plain next-token training: the KL term must do better than that.
    train(student_dir, TEXTS, tmp_path / "ce-only", _config(teacher_dir, kd_alpha=0.0), progress=False)
    ce_only = held_out_kl(tmp_path / "ce-only", teacher_dir)
    print(f"held-out KL(teacher || student): {before:.4f} -> distilled {after:.4f}, CE only {ce_only:.4f}")
    assert after < 0.6 * before and after < ce_only, (before, after, ce_only)
    assert set(result.parts) == {"kl", "ce"} and len(result.parts["kl"]) == 30
    assert result.parts["kl"][-1] < result.parts["kl"][0]
    assert (tmp_path / "train_report.html").exists()


def test_teacher_with_another_tokenizer_is_refused(teacher_dir, student_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    tokenizer.add_tokens(["<feeder_id>"])
    other = tmp_path / "other-teacher"
    load_causal_lm(teacher_dir).save_pretrained(other)
    tokenizer.save_pretrained(other)
    with pytest.raises(WattError, match="different tokenizers.*'<feeder_id>'"):
        train(student_dir, TEXTS, tmp_path / "out", _config(other, steps=1), progress=False)


def test_teacher_head_narrower_than_the_tokenizer_is_refused(tokenizer_dir, student_dir, tmp_path):
    narrow = _make_model(tokenizer_dir, tmp_path / "narrow", hidden=32, layers=1, vocab=1000)
    with pytest.raises(WattError, match="vocabularies do not match"):
        train(student_dir, TEXTS, tmp_path / "out", _config(narrow, steps=1), progress=False)


def test_distill_needs_a_teacher():
    with pytest.raises(ValueError, match="needs a teacher"):
        TrainConfig(method="distill")


def test_chat_distillation_scores_answers_only(teacher_dir, student_dir):
    from wattlm.train.methods.distill import DistillMethod

    examples = [{"prompt": "What trips the breaker?", "response": "The relay, on an overcurrent."},
                {"prompt": "Who balances load?", "response": "The dispatchers."}]
    config = _config(teacher_dir, kd_data="chat", chat_template="chatml", seq_len=64, batch_size=2, bf16=True)
    method = DistillMethod(AutoTokenizer.from_pretrained(student_dir), examples, config, teacher_dir=teacher_dir)
    assert method.teacher.dtype == torch.bfloat16 and not method.teacher.training
    ids, labels = next(method.batches())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        step = method.loss(load_causal_lm(student_dir), (ids, labels))
    assert step.n_scored == int((labels[:, 1:] != -100).sum()) < ids[:, 1:].numel()
    assert step.total.requires_grad and torch.isfinite(step.total) and step.parts["kl"] > 0


def test_distill_resume_matches_uninterrupted_run(teacher_dir, student_dir, tmp_path, monkeypatch):
    config = _config(teacher_dir, steps=6, save_every=2, lora=LoraSettings(r=4, alpha=8, dropout=0.1))
    straight = train(student_dir, TEXTS, tmp_path / "straight", config, progress=False)
    real_step, calls = torch.optim.AdamW.step, {"n": 0}

    def crash_on_fifth(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated kill")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", crash_on_fifth)
    with pytest.raises(KeyboardInterrupt):
        train(student_dir, TEXTS, tmp_path / "resumed", config, progress=False, checkpoint_dir=tmp_path / "ckpt")
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    resumed = train(student_dir, TEXTS, tmp_path / "resumed", config, progress=False, checkpoint_dir=tmp_path / "ckpt")
    assert resumed.losses == pytest.approx(straight.losses, rel=1e-5)
    assert resumed.parts["kl"] == pytest.approx(straight.parts["kl"], rel=1e-5)
    from safetensors.torch import load_file

    ours, reference = load_file(tmp_path / "resumed" / "model.safetensors"), load_file(tmp_path / "straight" / "model.safetensors")
    for name in reference:
        assert torch.allclose(ours[name], reference[name], atol=1e-6), name


def test_stage_keys_and_records_the_teacher(teacher_dir, student_dir, tmp_path, home):
    from wattlm.data.stage import text_dataset
    from wattlm.models.store import add_model
    from wattlm.registry import Registry
    from wattlm.train.stage import train_model

    registry = Registry(home)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(" ".join(TEXTS))
    parent, data = add_model(registry, str(student_dir)), text_dataset(registry, corpus, "corpus")
    config = _config(teacher_dir, steps=2)
    model, reused = train_model(registry, parent, data, config, "distilled", progress=False)
    teacher = registry.get(model.meta["teacher"])
    assert not reused and teacher.path == teacher_dir.resolve()
    assert (teacher.id, "teacher") in model.parents and (parent.id, "parent") in model.parents
    assert (model.path / "train_report.html").exists() and "train_kl_end" in model.metrics
    again, reused = train_model(registry, parent, data, config, "distilled", progress=False)
    assert reused and again.id == model.id  # the folder teacher keeps its id, so the key is stable
    other = train_model(registry, parent, data, config.model_copy(update={"kd_temperature": 1.0}), "d2",
                        progress=False)[0]
    assert other.id != model.id
    cpt = TrainConfig(steps=2, seq_len=32, batch_size=4, bf16=False, lora=None, teacher=str(teacher_dir))
    plain, _ = train_model(registry, parent, data, cpt, "plain", progress=False)
    assert not any(role == "teacher" for _, role in plain.parents)  # a teacher only matters to distill


def test_teacher_follows_the_batches_device(teacher_dir, student_dir, monkeypatch):
    """Under `device: cuda` the loop puts batches on the GPU; the teacher (loaded on the CPU) must follow."""
    from wattlm.train.methods.distill import DistillMethod

    method = DistillMethod(AutoTokenizer.from_pretrained(student_dir), TEXTS, _config(teacher_dir), teacher_dir=teacher_dir)
    placed = []
    real_place = method.place_teacher
    monkeypatch.setattr(method, "place_teacher", lambda device: placed.append(device) or real_place(device))
    method.loss(load_causal_lm(student_dir), next(method.batches()))
    assert placed == [torch.device("cpu")]
    # The move itself, to a device this CPU machine has without a GPU: the meta device (no data).
    method.place_teacher(torch.device("meta"))
    assert {p.device.type for p in method.teacher.parameters()} == {"meta"}
