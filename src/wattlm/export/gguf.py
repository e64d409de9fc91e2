"""HF folder -> GGUF (f16 by llama.cpp's converter), then quantized types by llama.cpp's quantize API.

Every file is checked by loading it in llama-cpp-python: its greedy continuation of a prompt is
compared token by token with transformers on the same prompt ids, and its decode speed is measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from wattlm.errors import WattError
from wattlm.export.converter import converter_script

# llama.cpp's `enum llama_ftype` values (include/llama.h); f16 comes from the converter itself.
QUANT_FTYPES = {"q8_0": 7, "q4_0": 2, "q4_1": 3, "q5_k_m": 17, "q4_k_m": 15, "q6_k": 18}
SUPPORTED = ("f16", *QUANT_FTYPES)


@dataclass
class GgufCheck:
    quant: str
    file: str
    size_mb: float
    decode_tok_s: float
    greedy_match: int  # leading greedy tokens identical to transformers
    greedy_total: int

    def to_dict(self) -> dict:
        return asdict(self)


def convert_f16(model_dir: Path, out_file: Path, log_file: Path) -> Path:
    """Run llama.cpp's converter in a subprocess (it imports its own gguf-py and is memory hungry)."""
    script = converter_script()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(script.parent), str(script.parent / "gguf-py")])}
    tmp = out_file.with_name(out_file.name + ".part")
    with open(log_file, "w") as log:
        proc = subprocess.run(
            [sys.executable, str(script), str(model_dir), "--outtype", "f16", "--outfile", str(tmp)],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
    if proc.returncode != 0:
        tail = log_file.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise WattError(f"GGUF conversion of {model_dir} failed: {tail[0]} (full log: {log_file})")
    os.replace(tmp, out_file)
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
    tmp = dst.with_name(dst.name + ".part")
    code = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
    if code != 0:
        raise WattError(f"llama.cpp could not quantize {src} to {quant} (code {code})")
    os.replace(tmp, dst)
    return dst


def hf_greedy(model_dir: Path, prompt: str, n_tokens: int) -> tuple[list[int], list[int]]:
    """(prompt ids, greedy continuation ids) from transformers in fp32."""
    import torch
    from wattlm.models.hf import load_causal_lm, load_tokenizer

    tokenizer = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir)
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=n_tokens, do_sample=False, min_new_tokens=n_tokens)
    return ids[0].tolist(), out[0, ids.size(1) :].tolist()


def check_gguf(path: Path, quant: str, prompt_ids: list[int], reference: list[int]) -> GgufCheck:
    """Load `path` in llama.cpp, continue the same prompt ids greedily and time the decode."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=512, n_threads=os.cpu_count(), verbose=False)
    generated: list[int] = []
    start = time.perf_counter()
    # Feed the transformers prompt ids directly so a tokenizer difference cannot hide a weight bug.
    for token in llm.generate(prompt_ids, top_k=1, top_p=1.0, temp=0.0, repeat_penalty=1.0):
        generated.append(token)
        if len(generated) >= max(len(reference), 32):
            break
    seconds = time.perf_counter() - start
    match = 0
    for ours, ref in zip(generated, reference):
        if ours != ref:
            break
        match += 1
    llm.close()
    return GgufCheck(
        quant=quant, file=path.name, size_mb=round(path.stat().st_size / 2**20, 1),
        decode_tok_s=round(len(generated) / seconds, 1), greedy_match=match, greedy_total=len(reference),
    )
