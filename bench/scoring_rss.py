"""Resident memory of echo/logprobs scoring on Gemma 3 270M (262k vocabulary), the worst case for logits.

Loads the simple engine at n_ctx 2048 (the serve default) and prints the process RSS after loading,
after a 12-token and after a 500-token `echo` + `logprobs` request (plus peak RSS). Each figure is read
from /proc, so Linux only. Run it against another checkout by pointing PYTHONPATH at its src/ to compare:

    PYTHONPATH=src python bench/scoring_rss.py [--gguf path/to/model.gguf]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def rss_mib() -> tuple[float, float, float]:
    """(current RSS, peak RSS, PSS) of this process in MiB. PSS counts the model file's pages once even
    though each llama.cpp context maps it again (RSS counts them once per mapping)."""
    def read(path: str) -> dict[str, int]:
        lines = Path(path).read_text().splitlines()
        return {key: int(value.split()[0]) for key, value in (line.split(":", 1) for line in lines if ":" in line)
                if value.split() and value.split()[0].isdigit()}

    status, rollup = read("/proc/self/status"), read("/proc/self/smaps_rollup")
    return status["VmRSS"] / 1024, status["VmHWM"] / 1024, rollup["Pss"] / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gguf", type=Path, help="a Gemma GGUF (default: the packaged gemma3-270m)")
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args()

    from wattlm.engines.llamacpp import LlamaCppEngine
    from wattlm.engines.params import SamplingParams

    with tempfile.TemporaryDirectory() as scratch:
        gguf = args.gguf
        if gguf is None:
            from wattlm.models.packaged import materialize

            folder, name = materialize("gemma3-270m", Path(scratch))
            gguf = folder / name
        engine = LlamaCppEngine(gguf, n_ctx=args.n_ctx, n_threads=2)
        print(f"model {gguf.name}, n_ctx {args.n_ctx}, vocabulary {engine.tokenizer_info().vocab_size}")
        print("loaded:                RSS {:7.0f} MiB  peak {:7.0f} MiB  PSS {:7.0f} MiB".format(*rss_mib()))
        filler = " ".join(f"Feeder {n} at substation {n % 7} reported a fault." for n in range(200))
        for length in (12, 500):
            tokens = engine.tokenize(filler)[:length]
            answer = engine.generate_with_logprobs(tokens, SamplingParams(max_tokens=1, temperature=0), 1, echo=True)
            assert len(answer.token_logprobs) == length + 1
            print(f"after {length:3d}-token request: RSS {{:7.0f}} MiB  peak {{:7.0f}} MiB  PSS {{:7.0f}} MiB"
                  .format(*rss_mib()))
        engine.close()


if __name__ == "__main__":
    main()
