"""The one training loop. Methods differ by how they build batches and compute the loss (a hook).

A method (`train/methods/`) turns examples into batches and a batch into a loss: `cpt` (packed
documents) and `sft` (chat-formatted examples, loss on the answer only). The optimizer, schedule,
autocast, checkpoints, progress and saving live here, once.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from wattlm.train.config import TrainConfig
from wattlm.train.methods import METHODS


@dataclass
class TrainResult:
    steps: int
    tokens: int
    seconds: float
    losses: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)  # wall time of each step (benchmarks skip warm-up)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def metrics(self) -> dict:
        head = self.losses[: max(1, len(self.losses) // 10)]
        tail = self.losses[-max(1, len(self.losses) // 10) :]
        return {
            "train_steps": self.steps,
            "train_tokens": self.tokens,
            "train_seconds": round(self.seconds, 1),
            "train_tokens_per_s": round(self.tokens_per_s, 1),
            "train_loss_start": round(sum(head) / len(head), 4),
            "train_loss_end": round(sum(tail) / len(tail), 4),
        }




def _lr_at(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    model_dir: Path,
    examples: Sequence,
    out_dir: Path,
    config: TrainConfig,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
    replay_texts: Sequence[str] = (),
) -> TrainResult:
    """Train the model in `model_dir` on `examples` (texts for cpt, chat records for sft); write the
    merged HF model to `out_dir`.

    With `checkpoint_dir`, state is saved every `config.save_every` steps and a later call with the
    same folder continues from the last checkpoint to the same final step.
    """
    import torch

    from wattlm.models.hf import load_causal_lm, load_tokenizer
    from wattlm.train.checkpoint import load_checkpoint, save_checkpoint

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    tokenizer = load_tokenizer(model_dir)
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
    model.train()
    method = METHODS[config.method](tokenizer, examples, config, replay_texts)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)

    result = TrainResult(steps=0, tokens=0, seconds=0.0)
    batches = method.batches()
    resumed = load_checkpoint(checkpoint_dir, model, optimizer)
    if resumed:
        result = TrainResult(steps=resumed["step"], tokens=resumed["tokens"], seconds=resumed["seconds"],
                             losses=resumed["losses"])
        for _ in range(result.steps):  # replay the seeded sampler to where the run stopped
            next(batches)
    start = time.perf_counter() - result.seconds
    with _progress(progress, config.steps, done=result.steps) as bar:
        for step in range(result.steps, config.steps):
            step_start = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(step, config)
            batch = next(batches)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                loss, n_tokens = method.loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            result.steps += 1
            result.tokens += n_tokens
            result.losses.append(loss.item())
            result.seconds = time.perf_counter() - start
            result.step_seconds.append(time.perf_counter() - step_start)
            bar(step, result.losses[-1], result.tokens_per_s)
            if checkpoint_dir and config.save_every and result.steps % config.save_every == 0 \
                    and result.steps < config.steps:
                save_checkpoint(checkpoint_dir, model, optimizer, result.steps, result.losses, result.tokens,
                                result.seconds)

    if config.lora is not None:
        model = model.merge_and_unload()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "train_config.json").write_text(json.dumps(config.model_dump(), indent=2))
    (out_dir / "train_log.json").write_text(json.dumps({"losses": result.losses, **result.metrics()}, indent=2))
    return result


class _progress:
    """A rich progress bar with loss and tokens/s; plain log lines when stderr is not a terminal
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

            def log(step, loss, tps):
                if (step + 1) % every == 0 or step + 1 == self.total:
                    console.print(f"train step {step + 1}/{self.total} loss {loss:.3f} {tps:.0f} tok/s")
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
