"""Training methods: each turns examples into batches and a batch into a `StepLoss`.

A method has `batches()` (an endless, seeded iterator of global batches), `loss(model, batch)` and
`data_stats()` (what the training report shows about the data). The loop shards each global batch
across processes, so a method never needs to know how many there are.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class StepLoss:
    """One (shard of a) batch's loss, as sums: the loop divides by the scored count of the whole global
    batch, so one process and N processes compute the same mean."""

    total: object  # scalar tensor with grad: summed loss over scored positions
    n_scored: int  # positions that count in the mean (every position for cpt, answer tokens for sft)
    n_tokens: int  # positions processed (throughput counts padding and prompts too)
    parts: dict = field(default_factory=dict)  # named scalar sums logged beside the loss, e.g. kl, ce


def method_class(name: str):
    from wattlm.train.methods.cpt import CptMethod
    from wattlm.train.methods.distill import DistillMethod
    from wattlm.train.methods.sft import SftMethod

    return {"cpt": CptMethod, "sft": SftMethod, "distill": DistillMethod}[name]
