"""The table of task kinds: a kind (the prefix of stored metric names) -> its `Task` class.

Gates and `watt eval compare` read each class's declared `metrics` (and which direction is better)
through this table; the loaders pick a JSONL file's kind by the `record_fields` of its first record.
A new kind is one file with a `Task` subclass (see task.py) plus one entry here.
"""

from __future__ import annotations

from wattlm.eval.generative_qa import GenerativeQATask
from wattlm.eval.grounded_mc import GroundedMCTask
from wattlm.eval.grounded_qa import GroundedQATask
from wattlm.eval.multiple_choice import MultipleChoiceTask
from wattlm.eval.perplexity import PerplexityTask
from wattlm.eval.task import Metric, Task

TASKS: dict[str, type[Task]] = {"mc": MultipleChoiceTask, "qa": GenerativeQATask, "ppl": PerplexityTask,
                                "rag": GroundedQATask, "ragmc": GroundedMCTask}


def stored_metric(name: str) -> Metric | None:
    """The declared metric behind a stored score name `<kind>:<task>:<score>`, or None for other metrics."""
    kind, _, rest = name.partition(":")
    task, _, score = rest.rpartition(":")
    cls = TASKS.get(kind)
    return cls.metrics.get(score) if cls is not None and task else None


def gate_metrics() -> dict[str, Metric]:
    """Task scores a recipe gate can name, as `<kind>_<score>` (e.g. qa_char_f1)."""
    return {f"{kind}_{score}": metric for kind, cls in TASKS.items() for score, metric in cls.metrics.items()}
