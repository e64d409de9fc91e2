"""Training throughput: wattlm's loop vs the HF Trainer + PEFT, same model, data, sequence and batch.

    .venv/bin/python bench/train_bench.py                      # both packaged models, 12 steps x 2 repeats per side
    .venv/bin/python bench/train_bench.py --quick              # a smoke run on a busy machine (few steps, 1 repeat)
    .venv/bin/python bench/train_bench.py --model gemma3-270m --repeats 3
    .venv/bin/python bench/train_bench.py --profile            # one profiled step of ours per model, by phase
    .venv/bin/python bench/train_bench.py --profile --shapes --model smollm2-135m   # operators by input shape
    .venv/bin/python bench/train_bench.py --plain              # also our loop's plain path (peft, sdpa, shared loss)

Both sides use LoRA r=16 on all linear layers, bf16 autocast on the CPU, AdamW, the same packed blocks of
the sample corpus. Repeats alternate (HF, ours, HF, ours, ...) so a change in machine load hits both
sides alike; the table shows medians over repeats of tokens/s over the steps after `--warmup`, with the
process CPU seconds per step beside the wall seconds (CPU/wall far below the thread count means
other processes took the cores). The load average is printed before and after each model.

Utilisation is model FLOPs per second over the bf16 matmul peak measured in this run (torch.mm on
square bf16 matrices, all threads), before and after the runs (the median is used). FLOPs per token:
2·N forward + 2·N backward through activations + 2·N_trainable weight gradients, where N counts every
weight a token meets in a matmul (all linear layers and the output head); attention scores are not
counted, so utilisation is slightly understated.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGED = ("smollm2-135m", "gemma3-270m")
PHASES = ("train.data", "train.forward", "train.loss", "train.backward", "train.optimizer")


def matmul_peak(dtype_name: str, size: int = 2048, seconds: float = 3.0) -> float:
    """Sustained GFLOP/s of square matmuls with all threads."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        runs += 1
    return 2 * size**3 * runs / (time.perf_counter() - start) / 1e9


def flops_per_token(model_dir: Path) -> tuple[float, int, int]:
    """(model FLOPs per trained token, weights used in matmuls, trainable weights) under LoRA r=16."""
    import torch
    from peft import LoraConfig, get_peft_model

    from wattlm.models.hf import load_causal_lm

    model = get_peft_model(load_causal_lm(model_dir), LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                                                  task_type="CAUSAL_LM"))
    n_matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return 4 * n_matmul + 2 * n_trainable, n_matmul, n_trainable


def texts() -> list[str]:
    from wattlm.datasets import read_texts

    examples = REPO / "examples" / "power-grid"
    return list(read_texts(examples / "raw")) + list(read_texts(examples / "general"))


def _timed(wall: list[float], cpu: list[float], args) -> dict:
    wall, cpu = wall[args.warmup:], cpu[args.warmup:]
    return {"tokens_per_s": len(wall) * args.seq_len * args.batch / sum(wall),
            "wall_per_step": sum(wall) / len(wall), "cpu_per_step": sum(cpu) / len(cpu)}


def _config(args):
    from wattlm.train.config import LoraSettings, TrainConfig

    return TrainConfig(steps=args.steps, seq_len=args.seq_len, batch_size=args.batch, lr=2e-4, warmup_steps=1,
                       bf16=True, save_every=0, lora=LoraSettings(r=16, alpha=32, dropout=0.05))


def ours(model_dir: Path, args, corpus: list[str], plain: bool = False) -> dict:
    """Our loop; `plain`: with peft's LoRA forward, sdpa attention, shared/lm.py's fused loss and torch's
    default AdamW (the path before train/lean_lora.py, lora_siblings.py, attention.py, head_loss.py and the
    fused optimizer), for the speed-up and the loss curve beside it."""
    from contextlib import ExitStack
    from unittest import mock

    import torch

    from wattlm.shared.lm import causal_lm_nll
    from wattlm.train.loop import train

    with ExitStack() as stack:
        if plain:
            stack.enter_context(mock.patch("wattlm.train.lean_lora.lean_lora", lambda model, dtype: 0))
            stack.enter_context(mock.patch("wattlm.train.attention.use_bmm_attention", lambda model: False))
            stack.enter_context(mock.patch("wattlm.train.head_loss.causal_lm_loss", causal_lm_nll))
            stack.enter_context(mock.patch("wattlm.train.loop.adamw", lambda params, config: torch.optim.AdamW(
                params, lr=config.lr, weight_decay=config.weight_decay)))
        result = train(model_dir, corpus, None, _config(args), progress=False)
    return {**_timed(result.step_seconds, result.step_cpu_seconds, args), "losses": result.losses}


def hf_trainer(model_dir: Path, args, corpus: list[str]) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from wattlm.models.hf import load_causal_lm, load_tokenizer
    from wattlm.shared.lm import pack, tokenize_stream

    tokenizer = load_tokenizer(model_dir)
    blocks = pack(tokenize_stream(tokenizer, corpus), args.seq_len)
    dataset = [{"input_ids": row, "labels": row.clone()} for row in blocks]
    model = get_peft_model(load_causal_lm(model_dir, train=True), LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"))

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.wall: list[float] = []
            self.cpu: list[float] = []

        def on_step_begin(self, *a, **k):
            self.began = (time.perf_counter(), time.process_time())

        def on_step_end(self, *a, **k):
            self.wall.append(time.perf_counter() - self.began[0])
            self.cpu.append(time.process_time() - self.began[1])

    timer = StepTimer()
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(
                output_dir=out, per_device_train_batch_size=args.batch, max_steps=args.steps, learning_rate=2e-4,
                bf16=True, use_cpu=True, report_to=[], save_strategy="no", logging_strategy="no",
                dataloader_num_workers=0, seed=0, lr_scheduler_type="cosine", warmup_steps=1,
            ),
            train_dataset=dataset,
            data_collator=lambda rows: {k: torch.stack([r[k] for r in rows]) for k in rows[0]},
            callbacks=[timer],
        )
        trainer.train()
    return _timed(timer.wall, timer.cpu, args)


def profile_step(model_dir: Path, args, corpus: list[str]) -> None:
    """Profile our loop's last step with torch.profiler: time per phase and the heaviest operators."""
    from torch.profiler import ProfilerActivity, profile, schedule

    from wattlm.train.loop import train

    steps = max(2, args.warmup + 1)
    config = _config(args).model_copy(update={"steps": steps})
    # Only the last step is recorded (the one before it warms the profiler up; earlier ones touch memory first).
    with profile(activities=[ProfilerActivity.CPU], schedule=schedule(wait=steps - 2, warmup=1, active=1),
                 record_shapes=args.shapes) as prof:
        result = train(model_dir, corpus, None, config, progress=False, on_step=lambda step: prof.step())
    events = {e.key: e for e in prof.key_averages()}
    step_ms = result.step_seconds[-1] * 1e3
    print(f"one step, {args.batch} x {args.seq_len} tokens: {step_ms:.0f} ms wall, "
          f"{result.step_cpu_seconds[-1] * 1e3:.0f} ms CPU (profiler on)")
    for phase in PHASES:
        if phase in events:
            ms = events[phase].cpu_time_total / 1e3
            print(f"  {phase:<17} {ms:>8.0f} ms  {ms / step_ms:>6.1%}")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=45))
    if args.shapes:  # the same operators split by input shape: which matmul, which cast
        print(prof.key_averages(group_by_input_shape=True).table(
            sort_by="self_cpu_time_total", row_limit=args.top, max_name_column_width=30, max_shapes_column_width=70))


def bench_model(name: str, model_dir: Path, args, corpus: list[str]) -> None:
    import torch

    fpt, n_matmul, n_trainable = flops_per_token(model_dir)
    print(f"\n## {name}: {n_matmul / 1e6:.0f} M matmul weights, {n_trainable / 1e6:.2f} M trainable; seq {args.seq_len}"
          f" x batch {args.batch}, {args.steps} steps ({args.warmup} warm-up) x {args.repeats} repeats per side,"
          f" threads {torch.get_num_threads()}")
    if args.profile:
        profile_step(model_dir, args, corpus)
        return
    load_before = os.getloadavg()
    peaks = [matmul_peak("bfloat16")]
    runs: dict[str, list[dict]] = {"HF Trainer + PEFT": [], "wattlm loop": []}
    if args.plain:
        runs["wattlm plain path"] = []
    for _ in range(args.repeats):  # alternate, so a load change hits every side alike
        runs["HF Trainer + PEFT"].append(hf_trainer(model_dir, args, corpus))
        runs["wattlm loop"].append(ours(model_dir, args, corpus))
        if args.plain:
            runs["wattlm plain path"].append(ours(model_dir, args, corpus, plain=True))
    peaks.append(matmul_peak("bfloat16"))
    load_after = os.getloadavg()
    peak = statistics.median(peaks)
    print(f"load average before {load_before[0]:.2f} {load_before[1]:.2f}, after {load_after[0]:.2f} {load_after[1]:.2f}"
          f" (1 and 5 min); bf16 matmul peak {' / '.join(f'{p:.0f}' for p in peaks)} GFLOP/s (before / after)")
    print(f"{'run':<18} {'tokens/s':>9} {'each repeat':>20} {'wall s/step':>11} {'CPU s/step':>10}"
          f" {'GFLOP/s':>8} {'of bf16 peak':>12}")
    medians = {}
    for run, results in runs.items():
        tps = statistics.median(r["tokens_per_s"] for r in results)
        wall = statistics.median(r["wall_per_step"] for r in results)
        cpu = statistics.median(r["cpu_per_step"] for r in results)
        medians[run] = tps
        each = ", ".join(f"{r['tokens_per_s']:.0f}" for r in results)
        gflops = tps * fpt / 1e9
        print(f"{run:<18} {tps:>9.1f} {each:>20} {wall:>11.2f} {cpu:>10.2f} {gflops:>8.1f} {gflops / peak:>12.1%}")
    for run in runs:
        if "losses" in runs[run][0]:
            print(f"{run} loss by step (repeat 1): {' '.join(f'{x:.3f}' for x in runs[run][0]['losses'])}")
    print(f"ratio {name} wattlm / HF Trainer: {medians['wattlm loop'] / medians['HF Trainer + PEFT']:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="packaged model name or HF folder (repeatable); "
                        f"default: {', '.join(PACKAGED)}")
    parser.add_argument("--steps", type=int, default=12, help="steps per run; the first --warmup are not timed "
                        "(default: 10 timed steps x 2 repeats per side, both models in ~8 min on a quiet machine)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="runs per side, alternating; medians are shown")
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="4 steps (1 warm-up), 1 repeat: a smoke run")
    parser.add_argument("--plain", action="store_true", help="also run our loop on the plain path (peft's LoRA "
                        "forward, sdpa attention, the shared fused loss): the speed-up of the lean path and both loss curves")
    parser.add_argument("--profile", action="store_true", help="profile one step of our loop per model instead")
    parser.add_argument("--top", type=int, default=15, help="operators listed by --profile")
    parser.add_argument("--shapes", action="store_true", help="--profile: also list operators by input shape")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup, args.repeats = 4, 1, 1
    if args.steps <= args.warmup:
        parser.error("--steps must be larger than --warmup")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from wattlm.models.store import hf_dir, resolve_model
    from wattlm.registry import Registry

    corpus = texts()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as home:
        registry = Registry(Path(os.environ.get("WATT_BENCH_HOME", home)))
        for name in args.model or PACKAGED:
            model_dir = Path(name) if Path(name).exists() else hf_dir(registry, resolve_model(registry, name))
            bench_model(Path(name).name, model_dir, args, corpus)
    print(f"\nbench wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    sys.exit(main())
