import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from wattlm.errors import WattError
from wattlm.eval.perplexity import perplexity
from wattlm.export.gguf import check_gguf, convert_f16, hf_greedy, load_reference, quantize, token_windows


@pytest.fixture(scope="module")
def tiny_f16(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    return convert_f16(tiny_model_dir, out / "model-f16.gguf", out / "convert.log")


def test_f16_gguf_logits_match_transformers(tiny_model_dir, tiny_f16):
    from llama_cpp import Llama

    ids = [1, 504, 2087, 314, 253, 1345, 30, 2260]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.no_grad():
        expected = model(input_ids=torch.tensor([ids])).logits[0].numpy()
    llm = Llama(model_path=str(tiny_f16), n_ctx=64, logits_all=True, verbose=False, n_threads=2)
    llm.eval(ids)
    ours = np.asarray(llm.scores[: len(ids)])
    llm.close()
    assert ours.shape == expected.shape
    # f16 weights: logits agree to a few thousandths on a tiny random model.
    assert np.abs(ours - expected).max() < 0.05
    assert (ours.argmax(-1) == expected.argmax(-1)).mean() >= 0.75


def test_quantize_and_check(tiny_model_dir, tiny_f16, tmp_path):
    q8 = quantize(tiny_f16, tmp_path / "model-q8_0.gguf", "q8_0")
    assert q8.read_bytes()[:4] == b"GGUF"
    assert not list(tmp_path.glob("*.part"))
    prompt_ids, reference = hf_greedy(*load_reference(tiny_model_dir), "The relay", 8)
    check = check_gguf(tiny_f16, "f16", prompt_ids, reference)
    assert check.greedy_total == 8 and check.size_mb > 0 and check.decode_tok_s > 0


def test_unknown_quant_and_failed_conversion(tiny_f16, tmp_path):
    with pytest.raises(WattError, match="not supported"):
        quantize(tiny_f16, tmp_path / "x.gguf", "q3_weird")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"architectures": ["NoSuchModel"]}')
    with pytest.raises(WattError, match="GGUF conversion"):
        convert_f16(tmp_path / "broken", tmp_path / "o.gguf", tmp_path / "log.txt")
    assert not (tmp_path / "o.gguf").exists()


def test_gguf_perplexity_matches_transformers(tiny_model_dir, tiny_f16):
    texts = ["The operator reads the meter, then closes the breaker and reports to the dispatcher. " * 8]
    model, tokenizer = load_reference(tiny_model_dir)
    windows = token_windows(tokenizer, texts, seq_len=48, max_tokens=None)
    assert len(windows) > 1
    prompt_ids, reference = hf_greedy(model, tokenizer, "The relay", 4)
    check = check_gguf(tiny_f16, "f16", prompt_ids, reference, windows)
    expected = perplexity(tiny_model_dir, texts, seq_len=48, max_tokens=None).ppl
    assert abs(check.ppl - expected) / expected < 0.01
