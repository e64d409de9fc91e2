"""A student cut from its teacher's layers: same vocabulary, fewer layers, the kept weights unchanged."""

import pytest
import torch
from transformers import AutoTokenizer, Gemma3ForCausalLM, Gemma3TextConfig

from wattlm.errors import WattError
from wattlm.models.hf import load_causal_lm
from wattlm.models.shrink import shrink_model, spread_layers
from wattlm.models.store import add_model
from wattlm.registry import Registry


@pytest.fixture(scope="module")
def tiny_gemma(tokenizer_dir, tmp_path_factory):
    """4 layers with Gemma 3's attention pattern: three sliding-window layers, then a global one."""
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=8,
        layer_types=["sliding_attention"] * 3 + ["full_attention"], max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=0,
    )
    out = tmp_path_factory.mktemp("tiny-gemma")
    Gemma3ForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_spread_keeps_first_and_last():
    assert spread_layers(18, 9) == [0, 2, 4, 6, 8, 11, 13, 15, 17]
    assert spread_layers(4, 2) == [0, 3] and spread_layers(4, 4) == [0, 1, 2, 3] and spread_layers(4, 1) == [3]
    with pytest.raises(WattError, match="between 1 and the model's 4 layers, got 5"):
        spread_layers(4, 5)


def test_shrunk_student_keeps_its_teachers_weights_and_runs(tiny_gemma, tmp_path):
    registry = Registry(tmp_path / "ws")
    teacher = add_model(registry, str(tiny_gemma), name="teacher", tier="task")
    student, reused = shrink_model(registry, teacher, 2, "student")
    assert not reused and student.tier == "task" and student.parents == [(teacher.id, "init")]
    assert student.meta["kept_layers"] == [0, 3] and student.metrics["layers"] == 2
    assert student.metrics["parameters"] < student.metrics["parent_parameters"]

    big, small = load_causal_lm(tiny_gemma), load_causal_lm(student.path)
    assert small.config.num_hidden_layers == 2
    assert small.config.layer_types == ["sliding_attention", "full_attention"]  # the pattern follows the layers
    big_state, small_state = big.state_dict(), small.state_dict()
    for name, value in small_state.items():
        source = name.replace("layers.1.", "layers.3.")  # student layer 1 is teacher layer 3
        assert torch.equal(value, big_state[source]), name
    # Same output as the teacher run with only layers 0 and 3, incremental decoding included.
    ids = torch.tensor([[5, 17, 42, 9, 100, 7, 3, 250, 11, 64, 8]])
    big.model.layers = torch.nn.ModuleList([big.model.layers[0], big.model.layers[3]])
    for index, layer in enumerate(big.model.layers):
        layer.self_attn.layer_idx = index
    big.config.num_hidden_layers, big.config.layer_types = 2, small.config.layer_types
    with torch.no_grad():
        assert torch.allclose(small(ids).logits, big(ids).logits, atol=1e-5)
        out = small.generate(ids, max_new_tokens=6, do_sample=False)
    assert out.shape == (1, ids.shape[1] + 6)
    assert AutoTokenizer.from_pretrained(student.path).get_vocab() == AutoTokenizer.from_pretrained(tiny_gemma).get_vocab()

    again, reused = shrink_model(registry, teacher, 2, "student")
    assert reused and again.id == student.id
