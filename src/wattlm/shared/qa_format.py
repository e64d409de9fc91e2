"""The one wording of an open-book question, shared by the QA eval and the synthesized SFT data.

A task model learns to answer in the shape it is trained on; if the synthesized examples said "资料：…
问题：…" while the eval said "阅读材料，用简短的词语回答问题。材料：…", the eval would measure how well the
model transfers between two wordings, not how well it answers. Both sides therefore build their prompt
here. The instruction asks for a short answer because reading-comprehension answers are spans.
"""

from __future__ import annotations

from wattlm.shared.text import is_chinese


def qa_prompt(question: str, passage: str | None = None, lang: str | None = None) -> tuple[str, str]:
    """(prompt, delimiter): the prompt ends where the answer starts; the delimiter goes between them.

    `lang` defaults to the question's script ("zh" if it has hanzi, else "en")."""
    zh = (lang or ("zh" if is_chinese(question) else "en")) == "zh"
    if zh:
        if passage:
            return f"阅读材料，用简短的词语回答问题。\n材料：{passage}\n问题：{question}\n答案：", ""
        return f"问题：{question}\n答案：", ""
    if passage:
        return f"Read the passage and answer briefly.\nPassage: {passage}\nQuestion: {question}\nAnswer:", " "
    return f"Question: {question}\nAnswer:", " "
