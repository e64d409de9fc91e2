"""A toy teacher kind for the plugin test: deterministic, offline, no model. For each passage it asks
what the passage's second sentence says and answers with that sentence (so grounding holds)."""

from __future__ import annotations

import json
import re

from wattlm.synth.teachers.base import TeacherBase, TeacherPrompt, TeacherSpec


class EchoTeacher(TeacherBase):
    style = "chat"

    def __init__(self, name: str):
        super().__init__()
        self._name = name

    @classmethod
    def from_spec(cls, registry, config, spec: TeacherSpec) -> EchoTeacher:
        return cls(spec.ref or "echo")

    @property
    def name(self) -> str:
        return self._name

    @property
    def registry_id(self) -> str | None:
        return None  # not a registered model: no lineage edge

    def describe(self) -> dict:
        return {"type": "echo", "name": self._name}

    def prepare(self) -> None:
        pass

    def close(self) -> None:
        pass

    def complete(self, prompts: list[TeacherPrompt]) -> list[str | None]:
        self.requests += len(prompts)
        replies = [self._reply(p.text) for p in prompts]
        self.replies += sum(r is not None for r in replies)
        return replies

    def _reply(self, prompt: str) -> str | None:
        passage = prompt.split("Passage:", 1)[-1].strip()
        sentences = [s.strip() for s in re.split(r"(?<=\.)\s+", passage) if s.strip()]
        if len(sentences) < 2:
            self.fail("short_passage")
            return None
        subject = " ".join(sentences[1].split()[:3])
        return json.dumps({"pairs": [{"question": f"What does the passage say about {subject}?",
                                      "answer": sentences[1]}]})
