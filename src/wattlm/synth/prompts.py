"""Teacher prompts, kept as files under `prompts/`: `<task>.<lang>.<form>.txt`.

task: qa, summary, extract, judge, answer (the round-trip check); lang: zh, en; form: `chat` (an instruction for instruct teachers,
answered in JSON) or `fewshot` (worked examples a *base* model continues, answered in labelled lines).
A file opens with `## key: <JSON>` header lines: `reply` (json, lines, verdict or question: how to
parse the answer) and, for few-shot prompts, `stop` (strings that end the continuation before the model starts
an example of its own). The body is a `string.Template`: `${passage}`, `${n}`, `${question}`, `${answer}`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from string import Template

from wattlm.errors import NotFound, WattError

PROMPT_DIR = Path(__file__).parent / "prompts"
FORMS = {"chat": "chat", "completion": "fewshot"}  # teacher style -> prompt form
# json / lines: the teacher writes items; verdict: yes or no; question: the stage gives the answer (a
# span of the passage, see `spans`) and the teacher writes only the question it answers; answer: a short
# answer to a given question (the round-trip check).
REPLY_FORMS = ("json", "lines", "verdict", "question", "answer")


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    reply: str  # one of REPLY_FORMS
    stop: tuple[str, ...]
    body: str

    def render(self, **values: object) -> str:
        try:
            return Template(self.body).substitute({k: str(v) for k, v in values.items()})
        except KeyError as missing:
            raise WattError(f"prompt {self.name}: no value for placeholder {missing}") from None

    @property
    def examples(self) -> str:
        """The worked examples before the passage slot: a small teacher sometimes copies them."""
        return self.body.split("${passage}", 1)[0] if self.stop else ""

    @property
    def reply_prefix(self) -> str:
        """A few-shot prompt ends with the label of the answer it wants ("问题："); the continuation
        starts after it, so the parser sees the label again only if we put it back."""
        return self.body.rsplit("\n", 1)[-1] if self.stop else ""


def parse_template(name: str, source: str) -> PromptTemplate:
    header: dict[str, object] = {}
    lines = source.split("\n")
    while lines and lines[0].startswith("## "):
        key, _, value = lines.pop(0)[3:].partition(":")
        try:
            header[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            raise WattError(f"prompt {name}: header {key.strip()!r} is not JSON: {value.strip()}") from None
    reply = header.get("reply")
    if reply not in REPLY_FORMS:
        raise WattError(f"prompt {name}: header 'reply' must be one of {', '.join(REPLY_FORMS)}, got {reply!r}")
    stop = header.get("stop", [])
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise WattError(f"prompt {name}: header 'stop' must be a JSON list of strings")
    # A few-shot body must end exactly at its answer label, without the file's closing newline.
    body = "\n".join(lines).rstrip("\n") if stop else "\n".join(lines).strip("\n")
    return PromptTemplate(name=name, reply=str(reply), stop=tuple(stop), body=body)


@cache
def load_prompt(task: str, lang: str, style: str, folder: Path = PROMPT_DIR) -> PromptTemplate:
    name = f"{task}.{lang}.{FORMS[style]}.txt"
    path = folder / name
    if not path.exists():
        raise NotFound(f"prompt file not found: {path}")
    return parse_template(name, path.read_text(encoding="utf-8"))


def prompts_digest(folder: Path = PROMPT_DIR) -> str:
    """Hash of every prompt file: editing a prompt invalidates synthesized datasets made with it."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.txt")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
