"""The GPU checks of issue 16, run on a machine with a CUDA GPU (bench/gpu_check.sh installs and calls this).

1. The SmolLM2 demo recipe (examples/power-grid/recipe-smollm2.yaml) end to end twice, `train.device: cpu`
   and `train.device: cuda` (same seed), each in its own WATT_HOME: wall time, loss curves (largest
   step-wise difference), final train loss, and the perplexity of each trained model on the recipe's
   general text, both scored on the GPU in fp32.
2. bf16: whether the GPU computes in it (then training autocasts to it, `train/device.py`).
3. Gradient checkpointing on the GPU: peak memory and loss with and without, same steps.
4. QLoRA (4-bit base through bitsandbytes, when it is installed): a few LoRA steps on the 4-bit model.
5. With 2+ GPUs: `watt train` under torchrun with `distributed: {strategy: fsdp}` and with ddp.

Prints one table (markdown). No timings are asserted: they are figures for docs/scale-out.md.

    python bench/gpu_check.py [--work /tmp/gpu-check] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "power-grid"
TEXTS = ["The breaker trips when the relay sees an overcurrent on feeder seven. Operators verify voltage "
         "absence before grounding any conductor. " * 8] * 16


def run_demo(work: Path, device: str, steps: int) -> dict:
    """`watt run` on a copy of the demo folder with train.device set; returns timings and the train log."""
    import yaml

    folder = work / device
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(DEMO, folder / "power-grid")
    recipe_path = folder / "power-grid" / "recipe-smollm2.yaml"
    recipe = yaml.safe_load(recipe_path.read_text())
    recipe["train"].update(device=device, steps=steps)
    recipe_path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    env = {**os.environ, "WATT_HOME": str(folder / "home")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "wattlm.cli", "run", str(recipe_path), "--json", "--quiet"],
                          env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    from wattlm.registry import Registry

    trained = [m for m in Registry(folder / "home").list("model") if (m.path / "train_log.json").exists()]
    model = trained[0]
    log = json.loads((model.path / "train_log.json").read_text())
    return {"seconds": seconds, "model_dir": model.path, "log": log, "home": folder / "home"}


def perplexity(model_dir: Path, texts: list[str]) -> float:
    import torch

    from wattlm.models.hf import load_causal_lm, load_tokenizer
    from wattlm.shared.lm import causal_lm_nll

    tokenizer, model = load_tokenizer(model_dir), load_causal_lm(model_dir).cuda()
    nll, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"][:512]], device="cuda")
            total, scored = causal_lm_nll(model, ids)
            nll, count = nll + float(total), count + scored
    return math.exp(nll / max(1, count))


def train_on_gpu(model_dir: Path, **fields) -> dict:
    """A short LoRA run on the GPU: final loss and peak memory."""
    import torch

    from wattlm.train.config import TrainConfig
    from wattlm.train.loop import train

    torch.cuda.reset_peak_memory_stats()
    config = TrainConfig(steps=8, seq_len=256, batch_size=8, lr=3e-4, warmup_steps=1, save_every=0, device="cuda",
                         **fields)
    result = train(model_dir, TEXTS, None, config, progress=False)
    return {"loss_end": result.losses[-1], "peak_gib": torch.cuda.max_memory_allocated() / 2**30,
            "tok_s": result.tokens_per_s}


def qlora_steps(model_dir: Path) -> str:
    """4-bit base weights (bitsandbytes NF4), LoRA adapters in bf16: the library path a `quantize` option
    would take. Returns 'loss a -> b, peak X GiB' or why it was skipped."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        return "skipped: bitsandbytes not installed"
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from wattlm.shared.lm import causal_lm_nll

    torch.cuda.reset_peak_memory_stats()
    quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
    model = AutoModelForCausalLM.from_pretrained(model_dir, quantization_config=quant, device_map={"": 0})
    model = get_peft_model(prepare_model_for_kbit_training(model),
                           LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM"))
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = torch.tensor([tokenizer(TEXTS[0])["input_ids"][:256]] * 4, device="cuda")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    for _ in range(8):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            total, scored = causal_lm_nll(model, ids)
        (total / scored).backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(total) / scored)
    return f"loss {losses[0]:.3f} -> {losses[-1]:.3f}, peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"


def torchrun_train(work: Path, home: Path, parent: str, strategy: str, gpus: int) -> str:
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(TEXTS))
    config = work / f"{strategy}.json"
    config.write_text(json.dumps({"steps": 8, "seq_len": 256, "batch_size": 8, "save_every": 0, "device": "cuda",
                                  "distributed": {"strategy": strategy}}))
    env = {**os.environ, "WATT_HOME": str(home)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           str(gpus), "-m", "wattlm.cli", "train", "--model", parent, "--data", str(corpus),
                           "--name", f"check-{strategy}", "--config", str(config), "--json", "--quiet"],
                          env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1][:150]
    metrics = json.loads(done.stdout)["metrics"]
    return f"ok in {time.perf_counter() - started:.0f} s, loss end {metrics['train_loss_end']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-check"))
    parser.add_argument("--steps", type=int, default=30, help="train.steps of both demo runs")
    args = parser.parse_args()
    import torch

    from wattlm.train.device import autocast_dtype, resolve_device

    if not torch.cuda.is_available():
        sys.exit("gpu_check: torch sees no CUDA GPU (torch %s, CUDA build %s)" % (torch.__version__, torch.version.cuda))
    args.work.mkdir(parents=True, exist_ok=True)
    gpu = torch.cuda.get_device_name(0)
    rows = [("GPU", f"{gpu} x{torch.cuda.device_count()}, torch {torch.__version__}, CUDA {torch.version.cuda}", "")]
    rows.append(("bf16 autocast on the GPU", str(autocast_dtype(resolve_device("cuda"), True)), ""))

    runs = {device: run_demo(args.work, device, args.steps) for device in ("cpu", "cuda")}
    for device, run in runs.items():
        rows.append((f"demo recipe, train.device: {device}",
                     run.get("error") or f"{run['seconds']:.0f} s whole recipe, train "
                     f"{run['log']['train_tokens_per_s']} tok/s, loss end {run['log']['train_loss_end']}", ""))
    if all("error" not in run for run in runs.values()):
        cpu_losses, gpu_losses = runs["cpu"]["log"]["losses"], runs["cuda"]["log"]["losses"]
        worst = max(abs(a - b) for a, b in zip(cpu_losses, gpu_losses, strict=True))
        rows.append(("loss curve cpu vs cuda", f"largest step difference {worst:.4f}",
                     f"first {cpu_losses[0]:.4f} / {gpu_losses[0]:.4f}"))
        general = [p.read_text(encoding="utf-8") for p in sorted((DEMO / "general").glob("*.txt"))]
        ppl = {device: perplexity(run["model_dir"], general) for device, run in runs.items()}
        rows.append(("general-text perplexity of the trained model", f"cpu {ppl['cpu']:.3f}, cuda {ppl['cuda']:.3f}",
                     f"difference {ppl['cuda'] - ppl['cpu']:+.3f}"))
        from wattlm.models.store import hf_dir, resolve_model
        from wattlm.registry import Registry

        registry = Registry(runs["cuda"]["home"])
        parent_dir = hf_dir(registry, resolve_model(registry, "smollm2-135m"))
        plain, ckpt = train_on_gpu(parent_dir), train_on_gpu(parent_dir, gradient_checkpointing=True)
        rows.append(("gradient checkpointing (8 steps, 8x256)",
                     f"peak {plain['peak_gib']:.2f} -> {ckpt['peak_gib']:.2f} GiB",
                     f"loss end {plain['loss_end']:.4f} / {ckpt['loss_end']:.4f}, "
                     f"{plain['tok_s']:.0f} -> {ckpt['tok_s']:.0f} tok/s"))
        rows.append(("QLoRA (bitsandbytes NF4, library path)", qlora_steps(parent_dir), "no recipe option yet"))
        gpus = torch.cuda.device_count()
        for strategy in ("ddp", "fsdp"):
            rows.append((f"torchrun {strategy}", torchrun_train(args.work, runs["cuda"]["home"], "smollm2-135m",
                                                                strategy, gpus) if gpus > 1 else "skipped: 1 GPU", ""))
    rows.append(("serve: --engine vllm / llama.cpp GPU offload", "not run: not built in this branch", ""))
    print("| check | result | note |\n| --- | --- | --- |")
    for check, result, note in rows:
        print(f"| {check} | {result} | {note} |")


if __name__ == "__main__":
    main()
