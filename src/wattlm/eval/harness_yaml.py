"""lm-evaluation-harness task YAML with a local JSONL dataset, so a user's existing eval sets run here.

Supported: task, dataset_path (`json` with dataset_kwargs.data_files, or a path to a .jsonl file),
test_split / validation_split, output_type multiple_choice | generate_until, doc_to_text, doc_to_target,
doc_to_choice (Jinja templates, field names or YAML lists), target_delimiter, fewshot_delimiter,
num_fewshot, description, generation_kwargs.until / max_gen_toks. Few-shot examples are drawn from the
same split (the next items, cyclically), not from a training split. Anything that needs Python
(`!function`, `class`, `process_docs`) or the hub is refused with an error naming the field.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from wattlm.errors import WattError
from wattlm.eval.generative_qa import GenerativeQATask, QAItem
from wattlm.eval.multiple_choice import ChoiceItem, MultipleChoiceTask
from wattlm.eval.task import Task, TaskSettings, read_jsonl, with_fewshot

# Keys that only matter to the harness's own bookkeeping; accepted and ignored.
_IGNORED = {"tag", "group", "metadata", "metric_list", "should_decontaminate", "doc_to_decontamination_query",
            "training_split", "fewshot_split", "dataset_name", "fewshot_config", "filter_list", "repeats",
            "unsafe_code", "include"}
_KNOWN = {"task", "dataset_path", "dataset_kwargs", "test_split", "validation_split", "output_type",
          "doc_to_text", "doc_to_target", "doc_to_choice", "target_delimiter", "fewshot_delimiter",
          "num_fewshot", "description", "generation_kwargs"}


class _Python:
    """Marks a `!function` value: it names Python code, which we do not import and run."""

    def __init__(self, target: str):
        self.target = target


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!function", lambda loader, node: _Python(loader.construct_scalar(node)))


def _fail(path: Path, field: str, message: str) -> WattError:
    return WattError(f"{path}: field {field}: {message}")


def _dataset_file(path: Path, spec: dict) -> Path:
    source = spec.get("dataset_path")
    if isinstance(source, str) and source.endswith(".jsonl"):
        file = source
    elif source == "json":
        files = (spec.get("dataset_kwargs") or {}).get("data_files")
        if isinstance(files, dict):
            split = spec.get("test_split") or spec.get("validation_split") or next(iter(files), None)
            if split not in files:
                raise _fail(path, "dataset_kwargs.data_files", f"no file for split {split!r} (has {sorted(files)})")
            files = files[split]
        if isinstance(files, list):
            if len(files) != 1:
                raise _fail(path, "dataset_kwargs.data_files", "give exactly one local JSONL file per split")
            files = files[0]
        if not isinstance(files, str):
            raise _fail(path, "dataset_kwargs.data_files", "expected a local JSONL path")
        file = files
    else:
        raise _fail(path, "dataset_path", f"{source!r} is not local: use `json` with dataset_kwargs.data_files, "
                                          "or a path to a .jsonl file")
    field = "dataset_path" if source != "json" else "dataset_kwargs.data_files"
    if "://" in file:
        raise _fail(path, field, f"{file} is remote; only local files are read")
    resolved = (path.parent / file).resolve()
    # A task file may come with a downloaded benchmark: it must not read files beside it that are not
    # its own (../../.ssh/id_rsa as "data", an absolute path, a symlink out).
    if not resolved.is_relative_to(path.parent.resolve()):
        raise _fail(path, field, f"{file} is outside the task file's folder; keep the data beside the YAML")
    if not resolved.exists():
        raise _fail(path, field, f"file not found: {resolved}")
    return resolved


class _Renderer:
    """doc_to_* semantics: a field name gives the field, a list is literal, other text is a Jinja template."""

    def __init__(self, path: Path):
        import jinja2

        self.path = path
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        # A task YAML may come from anywhere: its templates must not reach Python internals.
        self.env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)

    def __call__(self, spec, doc: dict, field: str, where: str):
        import jinja2

        if isinstance(spec, _Python):
            raise _fail(self.path, field, f"`!function {spec.target}` needs Python code; use a Jinja template")
        if isinstance(spec, (int, list)):
            return spec
        if not isinstance(spec, str):
            raise _fail(self.path, field, f"expected a template, field name or list, got {type(spec).__name__}")
        if spec in doc:
            return doc[spec]
        try:
            return self.env.from_string(spec).render(**doc)
        except jinja2.TemplateError as exc:
            raise WattError(f"{self.path}: field {field} on {where}: {exc}") from None


def _as_choices(value, path: Path, where: str) -> list[str]:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise WattError(f"{path}: field doc_to_choice on {where}: {value[:60]!r} is not a list") from None
    if not isinstance(value, list) or len(value) < 2:
        raise WattError(f"{path}: field doc_to_choice on {where}: expected a list of at least two choices")
    return [str(c) for c in value]


def _gold(value, choices: list[str], path: Path, where: str) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, str) and value in choices:
        value = choices.index(value)
    if not isinstance(value, int) or not 0 <= value < len(choices):
        raise WattError(f"{path}: field doc_to_target on {where}: {value!r} is not a choice index or choice text")
    return value


def yaml_task(path: Path, settings: TaskSettings, name: str | None = None) -> Task:
    try:
        spec = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise WattError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict):
        raise WattError(f"{path}: expected a mapping of task fields")
    for key, value in spec.items():
        if key in ("class", "process_docs", "process_results") or isinstance(value, _Python):
            raise _fail(path, key, "Python hooks are not supported; express the task with Jinja templates")
        if key not in _KNOWN | _IGNORED:
            raise _fail(path, key, f"unknown lm-evaluation-harness field (supported: {', '.join(sorted(_KNOWN))})")
    output_type = spec.get("output_type", "generate_until")
    if output_type not in ("multiple_choice", "generate_until"):
        raise _fail(path, "output_type", f"{output_type!r}; supported: multiple_choice, generate_until")
    for field in ("doc_to_text", "doc_to_target") + (("doc_to_choice",) if output_type == "multiple_choice" else ()):
        if field not in spec:
            raise _fail(path, field, "missing")
    docs = read_jsonl(_dataset_file(path, spec))[: settings.limit]
    render = _Renderer(path)
    delimiter = str(spec.get("target_delimiter", " "))
    description = str(spec.get("description", ""))
    shots = settings.num_fewshot if settings.num_fewshot is not None else int(spec.get("num_fewshot") or 0)
    joiner = str(spec.get("fewshot_delimiter", "\n\n"))
    name = name or str(spec.get("task") or path.stem)
    prompts, targets = [], []
    mc_items: list[ChoiceItem] = []
    answers: list[list[str]] = []
    for n, doc in enumerate(docs, 1):
        where = f"record {n}"
        prompts.append(str(render(spec["doc_to_text"], doc, "doc_to_text", where)))
        target = render(spec["doc_to_target"], doc, "doc_to_target", where)
        if output_type == "multiple_choice":
            choices = _as_choices(render(spec["doc_to_choice"], doc, "doc_to_choice", where), path, where)
            gold = _gold(target, choices, path, where)
            mc_items.append(ChoiceItem(prompts[-1], choices, gold, delimiter))
            targets.append(choices[gold])
        else:
            accepted = [str(t) for t in target] if isinstance(target, list) else [str(target)]
            answers.append(accepted)
            targets.append(accepted[0])
    prompts = [description + p for p in with_fewshot(prompts, targets, [delimiter] * len(prompts), shots, joiner)]
    if output_type == "multiple_choice":
        for item, prompt in zip(mc_items, prompts, strict=True):
            item.prompt = prompt
        return MultipleChoiceTask(name, mc_items, batch_size=settings.batch_size)
    generation = spec.get("generation_kwargs") or {}
    until = generation.get("until", [])
    until = [until] if isinstance(until, str) else list(until)
    max_new = int(generation.get("max_gen_toks", settings.max_new_tokens))
    items = [QAItem(p, a) for p, a in zip(prompts, answers, strict=True)]
    return GenerativeQATask(name, items, max_new_tokens=max_new, batch_size=settings.batch_size,
                            stop=tuple(s for s in until if s and s != "\n"))
