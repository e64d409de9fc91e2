"""The one training loop. Methods differ by how they build batches and compute the loss (a hook).

A method (`train/methods/`, a `TrainingMethod` from the `METHODS` table) turns examples into batches
and a batch into a loss: `cpt` (packed documents), `sft` (chat-formatted examples, loss on the answer
only) and `distill` (a teacher's softened distributions). The optimizer, schedule, autocast, data
parallelism (`dist.py`), checkpoints, progress, saving and the training report live here, once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wattlm.errors import WattError
from wattlm.shared.progress import emit
from wattlm.train.config import TrainConfig


@dataclass
class TrainResult:
    steps: int
    tokens: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)  # wall time of each step (benchmarks skip warm-up)
    step_cpu_seconds: list[float] = field(default_factory=list)  # CPU time of this process per step (not logged)
    parts: dict[str, list[float]] = field(default_factory=dict)  # per-step loss parts, e.g. distill's kl and ce
    data_stats: dict = field(default_factory=dict)
    processes: int = 1

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def history(self) -> dict:
        return {"losses": self.losses, "step_seconds": self.step_seconds, "parts": self.parts}

    def metrics(self) -> dict:
        head = self.losses[: max(1, len(self.losses) // 10)]
        tail = self.losses[-max(1, len(self.losses) // 10) :]
        metrics = {
            "train_steps": self.steps,
            "train_tokens": self.tokens,
            "train_seconds": round(self.seconds, 1),
            "train_tokens_per_s": round(self.tokens_per_s, 1),
            "train_loss_start": round(sum(head) / len(head), 4),
            "train_loss_end": round(sum(tail) / len(tail), 4),
        }
        for name, values in self.parts.items():
            window = values[-max(1, len(values) // 10) :]
            metrics[f"train_{name}_end"] = round(sum(window) / len(window), 4)
        return metrics


def _lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def adamw(params: list, config: TrainConfig):
    """AdamW over the trainable parameters; torch's fused kernel where it applies.

    torch picks its per-parameter loop on the CPU (its foreach path is GPU-only): ~10 small tensor ops per
    parameter, and a LoRA model has many small ones (SmolLM2: 420). The fused kernel updates each
    parameter in one pass, with the same arithmetic (tests/train/test_optimizer.py). Sharded (FSDP)
    parameters keep torch's default."""
    import torch

    fused = bool(params) and all(type(p) is torch.nn.Parameter and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused or None)


def train(
    model_dir: Path,
    examples: Sequence,
    out_dir: Path | None,
    config: TrainConfig,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
    replay_texts: Sequence[str] = (),
    teacher_dir: Path | None = None,
    on_step: Callable[[int], None] | None = None,
) -> TrainResult:
    """Train the model in `model_dir` on `examples` (texts for cpt, chat records for sft); write the
    merged HF model, its train_log.json and train_report.html to `out_dir`.

    With `checkpoint_dir`, state is saved every `config.save_every` steps and a later call with the
    same folder continues from the last checkpoint to the same final step. `teacher_dir` is the HF
    folder of the distillation teacher. Under torchrun every process calls this; only rank 0 writes
    (checkpoints and `out_dir`, which other ranks may pass as None).
    """
    import torch
    from torch.profiler import record_function  # named phases for bench/train_bench.py --profile

    from wattlm.models.hf import load_causal_lm, load_tokenizer
    from wattlm.train.attention import restore_attention
    from wattlm.train.checkpoint import load_checkpoint, save_checkpoint
    from wattlm.train.device import autocast, enable_gradient_checkpointing, resolve_device, to_device
    from wattlm.train.dist import context
    from wattlm.train.distributed import gather_whole_weights, reduce_and_clip, shard_model, uses_fsdp
    from wattlm.train.fsdp_checkpoint import load_fsdp_checkpoint, save_fsdp_checkpoint
    from wattlm.train.head_loss import release_buffers
    from wattlm.train.methods import method_class

    device = resolve_device(config.device)
    dist = context()
    if config.batch_size < dist.world:
        raise WattError(f"train.batch_size {config.batch_size} is smaller than the {dist.world} processes: "
                        "each process needs at least one row of every batch")
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(model_dir)
    if config.quantize_base != "none":  # QLoRA: frozen 8/4-bit base weights, placed on the device as loaded
        from wattlm.train.quantized import load_quantized_lm

        model = load_quantized_lm(model_dir, config.quantize_base, device, config.bf16, config.gradient_checkpointing)
    else:
        model = load_causal_lm(model_dir)
    if config.lora is not None:
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                r=config.lora.r, lora_alpha=config.lora.alpha, lora_dropout=config.lora.dropout,
                target_modules=config.lora.target_modules, task_type="CAUSAL_LM",
            ),
        )
    if config.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    model.to(device).train()
    if config.lora is not None and config.bf16:  # after the move: its bf16 copies live on the training device
        from wattlm.train.lean_lora import lean_lora
        from wattlm.train.lora_siblings import group_siblings

        lean_lora(model, torch.bfloat16)
        group_siblings(model)  # q/k/v and gate/up of a layer in one pass each
    if config.bf16 and device.type == "cpu":
        from wattlm.train.attention import use_bmm_attention

        use_bmm_attention(model)  # short causal sequences: batched matmuls instead of the flash kernel
    method = method_class(config.method).from_config(config, tokenizer, examples, replay_texts, teacher_dir)
    params = [p for p in model.parameters() if p.requires_grad]
    dist.broadcast_parameters(params)
    params = shard_model(model, config, dist)  # fsdp: the sharded parameters; else the same list
    optimizer = adamw(params, config)

    result = TrainResult(steps=0, tokens=0, seconds=0.0, data_stats=method.stats(), processes=dist.world)
    batches = method.batches()
    if uses_fsdp(config):  # every process takes part: the state is gathered to and sent from rank 0
        resumed = load_fsdp_checkpoint(checkpoint_dir, model, optimizer, dist)
    else:
        resumed = load_checkpoint(checkpoint_dir, model, optimizer, rank=dist.rank)
    if resumed:
        history = resumed["history"]
        result.steps, result.tokens, result.seconds = resumed["step"], resumed["tokens"], resumed["seconds"]
        result.losses, result.step_seconds, result.parts = history["losses"], history["step_seconds"], history["parts"]
        for _ in range(result.steps):  # replay the seeded sampler to where the run stopped
            next(batches)
    start = time.perf_counter() - result.seconds
    with _progress(progress and dist.is_main, config.steps, done=result.steps) as bar:
        for step in range(result.steps, config.steps):
            step_start, step_cpu = time.perf_counter(), time.process_time()
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, config)
            with record_function("train.data"):
                # Every process draws the same global batch and keeps its rows.
                shard = to_device(dist.shard(next(batches)), device)
            with autocast(device, config.bf16):
                step_loss = method.loss(model, shard)
            names = sorted(step_loss.parts)
            n_scored, n_tokens, loss_sum, *part_sums = dist.sum(
                [step_loss.n_scored, step_loss.n_tokens, step_loss.total.item()]
                + [step_loss.parts[name].item() for name in names])
            n_scored = max(1.0, n_scored)
            # Normalise by the whole global batch's scored count, so summed gradients equal one process's.
            with record_function("train.backward"):
                (step_loss.total / n_scored).backward()
            with record_function("train.optimizer"):
                reduce_and_clip(params, config, dist)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            result.steps += 1
            result.tokens += int(n_tokens)
            result.losses.append(loss_sum / n_scored)
            for name, value in zip(names, part_sums, strict=True):
                result.parts.setdefault(name, []).append(value / n_scored)
            result.seconds = time.perf_counter() - start
            result.step_seconds.append(time.perf_counter() - step_start)
            result.step_cpu_seconds.append(time.process_time() - step_cpu)
            bar(step, result.losses[-1], result.tokens_per_s)
            if dist.is_main:  # to a recorded job's progress events (wattlm.shared.progress)
                emit("train_step", step=result.steps, steps=config.steps, loss=result.losses[-1], tokens_per_s=result.tokens_per_s)
            if on_step is not None:
                on_step(step)
            if checkpoint_dir and config.save_every and result.steps % config.save_every == 0 \
                    and result.steps < config.steps:
                rng_states = dist.gather_objects(torch.get_rng_state())
                if uses_fsdp(config):
                    save_fsdp_checkpoint(checkpoint_dir, model, optimizer, dist, result.steps, result.history(),
                                         result.tokens, result.seconds, rng_states)
                elif dist.is_main:
                    save_checkpoint(checkpoint_dir, model, optimizer, result.steps, result.history(), result.tokens,
                                    result.seconds, rng_states)

    release_buffers()
    restore_attention(model)
    gather_whole_weights(model, config)
    if dist.is_main and out_dir is not None:
        if config.quantize_base != "none":  # merged into the fp32 base, not into rounded 8/4-bit weights
            from wattlm.train.quantized import full_precision_adapter

            model = full_precision_adapter(model, model_dir)
        _save(model, tokenizer, out_dir, config, result)
    return result


def _save(model, tokenizer, out_dir: Path, config: TrainConfig, result: TrainResult) -> None:
    from wattlm.train.report import render_train_report

    if config.lora is not None:
        model = model.merge_and_unload()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    log = {**result.history(), **result.metrics(), "data": result.data_stats, "processes": result.processes}
    (out_dir / "train_config.json").write_text(json.dumps(config.model_dump(), indent=2))
    (out_dir / "train_log.json").write_text(json.dumps(log, indent=2))
    (out_dir / "train_report.html").write_text(render_train_report(config.model_dump(), log), encoding="utf-8")


class _progress:
    """A rich progress bar with loss, tokens/s, elapsed time and ETA; plain log lines when stderr is not a terminal
    (CI logs, `make demo | tee`), so long runs still show they are alive; nothing when disabled."""

    def __init__(self, enabled: bool, total: int, done: int = 0):
        self.enabled, self.total, self.done = enabled, total, done
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda *a: None
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        console = Console(stderr=True)
        if not console.is_terminal:
            every = max(1, self.total // 10)

            started, first = time.perf_counter(), self.done

            def log(step, loss, tps):
                if (step + 1) % every == 0 or step + 1 == self.total:
                    per_step = (time.perf_counter() - started) / max(1, step + 1 - first)
                    eta = per_step * (self.total - step - 1)
                    console.print(f"train step {step + 1}/{self.total} loss {loss:.3f} {tps:.0f} tok/s "
                                  f"eta {int(eta // 60)}:{int(eta % 60):02d}")
            return log
        self._bar = Progress(
            TextColumn("train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]:.3f}"), TextColumn("{task.fields[tps]:.0f} tok/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=console,
        )
        self._bar.__enter__()
        task = self._bar.add_task("train", total=self.total, completed=self.done, loss=float("nan"), tps=0.0)
        return lambda step, loss, tps: self._bar.update(task, completed=step + 1, loss=loss, tps=tps)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False
