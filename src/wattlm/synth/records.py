"""How a kept item becomes an SFT example: the passage and the instruction in the user turn.

The passage stays in the prompt on purpose: the task model learns to answer *from a given passage*
(reading comprehension grounded in documents), which is what the teacher was asked to do. QA examples
use the QA eval's own wording (`qa_format`), so the eval measures answering, not a change of wording.
"""

from __future__ import annotations

from wattlm.shared.qa_format import qa_prompt
from wattlm.synth.chunking import Chunk
from wattlm.synth.parsing import Item

_USER = {
    ("summary", "zh"): "资料：\n{passage}\n\n请用一两句话概括这段资料。",
    ("summary", "en"): "Passage:\n{passage}\n\nSummarise this passage in one or two sentences.",
    ("extract", "zh"): "资料：\n{passage}\n\n列出这段资料中的关键事实，每条一行。",
    ("extract", "en"): "Passage:\n{passage}\n\nList the key facts of this passage, one per line.",
}


def sft_record(chunk: Chunk, lang: str, kind: str, item: Item, teacher: str, grounding: float,
               question_source: str = "teacher") -> dict:
    if kind == "qa":
        user = qa_prompt(item.question or "", chunk.text, lang)[0]
    else:
        user = _USER[(kind, lang)].format(passage=chunk.text)
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": item.answer}],
        "chunk_id": chunk.id,
        "doc_id": chunk.doc_id,
        "teacher": teacher,
        "kind": kind,
        "grounding": round(grounding, 3),
        "question_source": question_source,
    }
