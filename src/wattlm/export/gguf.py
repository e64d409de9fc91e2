"""HF folder -> GGUF (f16 by llama.cpp's converter), then quantized types by llama.cpp's quantize API.

Every file is checked by loading it in llama-cpp-python: its greedy continuation of a prompt is
compared token by token with transformers on the same prompt ids, and its decode speed is measured.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from wattlm.errors import WattError
from wattlm.export.converter import converter_script
from wattlm.shared.records import atomic_path

# llama.cpp's `enum llama_ftype` values (include/llama.h); f16 comes from the converter itself.
QUANT_FTYPES = {"q8_0": 7, "q4_0": 2, "q4_1": 3, "q5_k_m": 17, "q4_k_m": 15, "q6_k": 18}
SUPPORTED = ("f16", *QUANT_FTYPES)


@dataclass
class GgufCheck:
    """What a file's check measured; a file exported without the check has only its size."""

    quant: str
    file: str
    size_mb: float
    decode_tok_s: float | None = None
    greedy_match: int | None = None  # leading greedy tokens identical to transformers
    greedy_total: int | None = None
    ppl: float | None = None  # perplexity of this file on the held-out windows, from llama.cpp

    def to_dict(self) -> dict:
        return asdict(self)


def convert_f16(model_dir: Path, out_file: Path, log_file: Path) -> Path:
    """Run llama.cpp's converter in a subprocess (it imports its own gguf-py and is memory hungry)."""
    script = converter_script()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(script.parent), str(script.parent / "gguf-py")])}
    with atomic_path(out_file) as tmp, open(log_file, "w") as log:
        proc = subprocess.run(
            [sys.executable, str(script), str(model_dir), "--outtype", "f16", "--outfile", tmp],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        if proc.returncode != 0:
            log.flush()
            tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise WattError(f"GGUF conversion of {model_dir} failed: {tail[0]} (full log: {log_file})")
    return out_file


def quantize(src: Path, dst: Path, quant: str, threads: int | None = None) -> Path:
    import logging

    import llama_cpp

    # llama-cpp-python prints every llama.cpp log line until a Llama(verbose=False) raises its level;
    # quantizing happens before any Llama exists, so raise it here (errors still show).
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
    if quant not in QUANT_FTYPES:
        raise WattError(f"export quant {quant!r} is not supported; choose from {list(SUPPORTED)}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_FTYPES[quant]
    params.nthread = threads or os.cpu_count() or 1
    with atomic_path(dst) as tmp:
        code = llama_cpp.llama_model_quantize(str(src).encode(), tmp.encode(), params)
        if code != 0:
            raise WattError(f"llama.cpp could not quantize {src} to {quant} (code {code})")
    return dst


def token_windows(tokenizer, texts: list[str], seq_len: int, max_tokens: int | None) -> list[list[int]]:
    """The same windows `watt eval` scores, so GGUF and transformers perplexities are comparable."""
    from wattlm.shared.lm import eval_windows, tokenize_stream

    ids = tokenize_stream(tokenizer, texts)
    return [w.tolist() for w in eval_windows(ids[:max_tokens] if max_tokens else ids, seq_len)]


def load_reference(model_dir: Path) -> tuple[object, object]:
    """The transformers model (fp32) and tokenizer the checks compare llama.cpp with."""
    from wattlm.models.hf import load_causal_lm, load_tokenizer

    return load_causal_lm(model_dir), load_tokenizer(model_dir)


def hf_greedy(model, tokenizer, prompt: str, n_tokens: int) -> tuple[list[int], list[int]]:
    """(prompt ids, greedy continuation ids) from transformers in fp32."""
    import torch

    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=n_tokens, do_sample=False, min_new_tokens=n_tokens)
    return ids[0].tolist(), out[0, ids.size(1) :].tolist()


def unchecked(path: Path, quant: str) -> GgufCheck:
    return GgufCheck(quant=quant, file=path.name, size_mb=round(path.stat().st_size / 2**20, 1))


def check_gguf(
    path: Path, quant: str, prompt_ids: list[int], reference: list[int], ppl_windows: list[list[int]] | None = None,
) -> GgufCheck:
    """Load `path` in llama.cpp, continue the same prompt ids greedily, time the decode and, given
    token windows, measure perplexity on them (the quality column of the export table)."""
    from wattlm.engines.compute_thread import compute
    from wattlm.engines.lazy_llama import open_llama, timed_greedy

    llm = open_llama(path, n_ctx=512, n_threads=os.cpu_count())
    # On the process's compute thread, as every llama.cpp graph (engines/compute_thread.py), in one call so
    # that the timing holds no hand-over between threads. The transformers prompt ids go in directly, so a
    # tokenizer difference cannot hide a weight bug.
    generated, decode_s = compute(timed_greedy, llm, prompt_ids, max(len(reference), 32))
    llm.close()
    match = 0
    for ours, ref in zip(generated, reference, strict=False):  # generated may run longer
        if ours != ref:
            break
        match += 1
    ppl = None
    if ppl_windows:
        # A second context that keeps every position's logits; the decode timing above runs without.
        scorer = open_llama(path, n_ctx=max(len(w) for w in ppl_windows), n_threads=os.cpu_count(), logits_all=True)
        ppl = _perplexity(scorer, ppl_windows)
        scorer.close()
    return GgufCheck(
        quant=quant, file=path.name, size_mb=round(path.stat().st_size / 2**20, 1),
        decode_tok_s=round((len(generated) - 1) / decode_s, 1) if decode_s > 0 else 0.0,
        greedy_match=match, greedy_total=len(reference), ppl=ppl,
    )


def _perplexity(llm, windows: list[list[int]]) -> float:
    """Token-level perplexity from llama.cpp's logits, windows scored independently (as in eval)."""
    import numpy as np

    from wattlm.engines.compute_thread import compute

    total_nll, count = 0.0, 0
    for window in windows:
        llm.reset()
        compute(llm.eval, window)
        logits = np.asarray(llm.scores[: len(window) - 1], dtype=np.float32)  # (n-1, vocab)
        peak = logits.max(axis=1, keepdims=True)
        log_norm = peak[:, 0] + np.log(np.exp(logits - peak).sum(axis=1, dtype=np.float64))
        targets = np.asarray(window[1:])
        total_nll += float((log_norm - logits[np.arange(len(targets)), targets]).sum())
        count += len(targets)
    return round(math.exp(total_nll / count), 4)
