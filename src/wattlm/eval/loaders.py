"""Building tasks from files: our JSONL formats, plain text, and lm-evaluation-harness task YAML.

JSONL, one object per line: the kind is the table entry (`eval/tasks.py`) whose `record_fields` the first
record has (the kind with the most such fields wins), e.g.
  multiple choice  {"question": str, "choices": [str, ...], "answer": index | letter | choice text}
  generative QA    {"question": str, "answer": str | [str, ...], "context": str (optional, open book)}
  perplexity       {"text": str}  (or any .txt / .md file or folder: perplexity on its documents)

A YAML file in the lm-evaluation-harness format (task, dataset_path: json + dataset_kwargs.data_files or
a .jsonl path, output_type multiple_choice | generate_until, doc_to_text / doc_to_target / doc_to_choice
as Jinja templates or field names, target_delimiter, fewshot_delimiter, num_fewshot, description,
generation_kwargs.until / max_gen_toks) is read with its dataset from local files; Python hooks
(`!function`) and hub datasets are refused with a clear error.
"""

from __future__ import annotations

from pathlib import Path

from wattlm.errors import NotFound, WattError
from wattlm.eval.harness_yaml import yaml_task
from wattlm.eval.perplexity import PerplexityTask
from wattlm.eval.task import Task, TaskSettings, read_jsonl
from wattlm.eval.tasks import TASKS

__all__ = ["TaskSettings", "grounded_task", "jsonl_task", "load_task", "read_jsonl", "text_task"]


def jsonl_task(path: Path, settings: TaskSettings, name: str | None = None) -> Task:
    records = read_jsonl(path)[: settings.limit]
    first = records[0]
    matching = [cls for cls in TASKS.values() if cls.record_fields and all(f in first for f in cls.record_fields)]
    if not matching:
        kinds = "; ".join(f"{'+'.join(cls.record_fields)} ({kind})" for kind, cls in TASKS.items() if cls.record_fields)
        raise WattError(f"{path} record 1: cannot tell the task kind: expected the fields of one of: {kinds}")
    # The most specific kind wins: question+choices is multiple choice, not QA.
    cls = max(matching, key=lambda c: len(c.record_fields))
    return cls.from_records(records, path, settings, name or path.stem)


def text_task(path: Path, settings: TaskSettings, name: str | None = None) -> PerplexityTask:
    return PerplexityTask.from_path(path, settings, name)


def load_task(path: Path, settings: TaskSettings | None = None, name: str | None = None) -> Task:
    """A task from a JSONL file, an lm-evaluation-harness YAML, or a text file/folder (perplexity)."""
    settings = settings or TaskSettings()
    path = Path(path)
    if not path.exists():
        raise NotFound(f"eval task file not found: {path}")
    if path.suffix in (".yaml", ".yml"):
        task = yaml_task(path, settings, name)
    elif path.suffix == ".jsonl":
        task = jsonl_task(path, settings, name)
    else:
        task = text_task(path, settings, name)
    if settings.limit is not None:  # a quick check's scores must not pass for the full set's
        task.name = f"{task.name}@{settings.limit}"
    return task


def grounded_task(path: Path, settings: TaskSettings, retrieve, k: int = 3, name: str | None = None) -> Task:
    """A grounded task from a JSONL file, over the caller's `retrieve(question, k)` (eval/grounded.py):
    records with `choices` -> ragmc (multiple choice), others -> rag (QA, or a rag file)."""
    from wattlm.eval.grounded_mc import GroundedMCTask
    from wattlm.eval.grounded_qa import GroundedQATask

    path = Path(path)
    if path.suffix != ".jsonl":
        raise WattError(f"{path}: grounded evaluation reads JSONL task files ({{question, answer[, source]}})")
    if not path.is_file():
        raise NotFound(f"eval task file not found: {path}")
    records = read_jsonl(path)[: settings.limit]
    if not isinstance(records[0], dict) or "question" not in records[0]:
        raise WattError(f"{path} record 1: a grounded task needs a 'question' field")
    cls = GroundedMCTask if "choices" in records[0] else GroundedQATask
    task = cls.build(records, path, settings, name or path.stem, retrieve, k)
    if settings.limit is not None:  # a quick check's scores must not pass for the full set's
        task.name = f"{task.name}@{settings.limit}"
    return task
