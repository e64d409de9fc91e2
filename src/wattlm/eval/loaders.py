"""Building tasks from files: our JSONL formats, plain text, and lm-evaluation-harness task YAML.

JSONL, one object per line (the kind is read from the fields of the first record):
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

from pydantic import BaseModel, ConfigDict, Field

from wattlm.errors import NotFound, WattError
from wattlm.eval.generative_qa import GenerativeQATask, QAItem
from wattlm.eval.multiple_choice import ChoiceItem, MultipleChoiceTask
from wattlm.eval.perplexity import PerplexityTask
from wattlm.eval.task import Task
from wattlm.shared.qa_format import qa_prompt
from wattlm.shared.text import is_chinese


class TaskSettings(BaseModel):
    """Run settings a caller (CLI or recipe) can set for every task it loads."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(8, ge=1, description="Sequences per forward pass (or per generate call).")
    max_new_tokens: int = Field(32, ge=1, description="Cap on generated tokens per QA answer.")
    num_fewshot: int | None = Field(None, ge=0, description="Solved examples before each prompt (None: the file's own, else 0).")
    limit: int | None = Field(None, ge=1, description="Use only the first N items (quick checks).")
    seq_len: int = Field(512, ge=8, description="Perplexity window in tokens.")
    max_tokens: int | None = Field(20000, ge=16, description="Perplexity: cap on evaluated tokens.")


def read_jsonl(path: Path) -> list[dict]:
    from wattlm.shared.records import jsonl_records

    records = list(jsonl_records(path))
    if not records:
        raise WattError(f"{path}: no records")
    return records


def with_fewshot(prompts: list[str], targets: list[str], delimiters: list[str], k: int, joiner: str) -> list[str]:
    """Each prompt preceded by the next k items (cyclically, never itself) with their answers filled in."""
    k = min(k, len(prompts) - 1)
    if k <= 0:
        return prompts
    out = []
    for i, prompt in enumerate(prompts):
        shots = [(i + j) % len(prompts) for j in range(1, k + 1)]
        out.append(joiner.join([*(prompts[s] + delimiters[s] + targets[s] for s in shots), prompt]))
    return out


# -- our JSONL formats ---------------------------------------------------------------------------

def _mc_prompt(record: dict) -> tuple[str, str]:
    zh = is_chinese(record["question"])
    passage = record.get("context")
    if zh:
        head = f"阅读材料：{passage}\n" if passage else ""
        return f"{head}问题：{record['question']}\n答案：", ""
    head = f"Passage: {passage}\n" if passage else ""
    return f"{head}Question: {record['question']}\nAnswer:", " "


def _qa_prompt(record: dict) -> tuple[str, str]:
    return qa_prompt(record["question"], record.get("context"))


def _gold_index(answer, choices: list[str], where: str) -> int:
    if isinstance(answer, bool):
        raise WattError(f"{where}: field answer must be an index, a letter or a choice text")
    if isinstance(answer, int):
        index = answer
    elif isinstance(answer, str) and answer in choices:
        index = choices.index(answer)
    elif isinstance(answer, str) and answer.isdigit():
        index = int(answer)
    elif isinstance(answer, str) and len(answer.strip()) == 1 and answer.strip().isalpha():
        index = ord(answer.strip().upper()) - ord("A")
    else:
        raise WattError(f"{where}: field answer {answer!r} is not an index, a letter or one of the choices")
    if not 0 <= index < len(choices):
        raise WattError(f"{where}: field answer {answer!r} is out of range for {len(choices)} choices")
    return index


def _require(record: dict, fields: dict[str, type | tuple], where: str) -> None:
    for name, kind in fields.items():
        if name not in record:
            raise WattError(f"{where}: missing field {name!r}")
        if not isinstance(record[name], kind):
            raise WattError(f"{where}: field {name!r} has the wrong type ({type(record[name]).__name__})")


def jsonl_task(path: Path, settings: TaskSettings, name: str | None = None) -> Task:
    records = read_jsonl(path)[: settings.limit]
    name = name or path.stem
    first = records[0]
    shots = settings.num_fewshot or 0
    if "choices" in first:
        items = []
        for n, record in enumerate(records, 1):
            where = f"{path} record {n}"
            _require(record, {"question": str, "choices": list, "answer": (int, str)}, where)
            if len(record["choices"]) < 2 or not all(isinstance(c, str) and c for c in record["choices"]):
                raise WattError(f"{where}: field 'choices' needs at least two non-empty strings")
            prompt, delimiter = _mc_prompt(record)
            items.append(ChoiceItem(prompt, record["choices"], _gold_index(record["answer"], record["choices"], where), delimiter))
        prompts = with_fewshot([i.prompt for i in items], [i.choices[i.answer] for i in items],
                               [i.delimiter for i in items], shots, "\n\n")
        for item, prompt in zip(items, prompts, strict=True):
            item.prompt = prompt
        return MultipleChoiceTask(name, items, batch_size=settings.batch_size)
    if "question" in first:
        qa_items, delimiters = [], []
        for n, record in enumerate(records, 1):
            where = f"{path} record {n}"
            record = {**record, "answer": record.get("answer", record.get("answers"))}
            _require(record, {"question": str, "answer": (str, list)}, where)
            answers = [record["answer"]] if isinstance(record["answer"], str) else record["answer"]
            if not answers or not all(isinstance(a, str) and a.strip() for a in answers):
                raise WattError(f"{where}: field 'answer' needs a non-empty string (or a list of them)")
            if "context" in record and not isinstance(record["context"], str):
                raise WattError(f"{where}: field 'context' must be a string")
            prompt, delimiter = _qa_prompt(record)
            qa_items.append(QAItem(prompt, answers))
            delimiters.append(delimiter)
        prompts = with_fewshot([i.prompt for i in qa_items], [i.answers[0] for i in qa_items], delimiters, shots, "\n\n")
        for item, prompt in zip(qa_items, prompts, strict=True):
            item.prompt = prompt
        return GenerativeQATask(name, qa_items, max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size)
    if "text" in first:
        return text_task(path, settings, name)
    raise WattError(f"{path} record 1: cannot tell the task kind: expected fields question+choices+answer "
                    "(multiple choice), question+answer (QA) or text (perplexity)")


def text_task(path: Path, settings: TaskSettings, name: str | None = None) -> PerplexityTask:
    from wattlm.datasets import read_texts

    texts = [t for t in read_texts(path) if t.strip()][: settings.limit]
    if not texts:
        raise WattError(f"{path}: no text to evaluate")
    return PerplexityTask(name or path.stem, texts, seq_len=settings.seq_len, batch_size=settings.batch_size,
                          max_tokens=settings.max_tokens)


def load_task(path: Path, settings: TaskSettings | None = None, name: str | None = None) -> Task:
    """A task from a JSONL file, an lm-evaluation-harness YAML, or a text file/folder (perplexity)."""
    settings = settings or TaskSettings()
    path = Path(path)
    if not path.exists():
        raise NotFound(f"eval task file not found: {path}")
    if path.suffix in (".yaml", ".yml"):
        from wattlm.eval.harness_yaml import yaml_task

        task = yaml_task(path, settings, name)
    elif path.suffix == ".jsonl":
        task = jsonl_task(path, settings, name)
    else:
        task = text_task(path, settings, name)
    if settings.limit is not None:  # a quick check's scores must not pass for the full set's
        task.name = f"{task.name}@{settings.limit}"
    return task
