"""Checks a synthesized pair must pass; each drop is counted under a snake_case reason.

Grounding is lexical: the share of the answer's units that also occur in its chunk, where a unit is a
character bigram inside a run of hanzi (Chinese has no spaces, and single characters match almost
anything) or a lowercased Latin word that is not a stopword. A small teacher that invents facts uses
words the passage does not have; one that copies the passage scores 1.0, which the copy check catches
on the question side.
"""

from __future__ import annotations

import re
from collections import defaultdict
from difflib import SequenceMatcher

from wattlm.shared.text import is_chinese
from wattlm.synth.config import SynthConfig
from wattlm.synth.parsing import Item

_ZH_QUESTION = re.compile(r"[？?]|什么|哪|多少|多久|多长|多大|多高|如何|怎样|怎么|是否|为什么|为何|谁|几|何时|吗|能否|可否")
_EN_QUESTION = re.compile(r"\?\s*$|^\s*(what|which|who|whom|whose|when|where|why|how|is|are|does|do|did|can|could|"
                          r"should|must|was|were|will|would|may|has|have)\b", re.I)
# A question asking for a quantity needs an answer with a number in it.
_ASKS_NUMBER = re.compile(r"多少|几[个次年月天小时米度条处级]|多久|多长|多高|多大|how (many|much|long|often|far|high)"
                          r"|what (temperature|voltage|percentage|distance)", re.I)
_DIGIT = re.compile(r"[0-9０-９一二三四五六七八九十百千万两半每]|\b(one|two|three|four|five|six|seven|eight|nine|ten|"
                    r"eleven|twelve|once|twice|every|daily|weekly|monthly|yearly|annually|quarter|half|hundred|"
                    r"thousand)\b", re.I)
_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")
_NOT_TEXT = re.compile(r"[\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    "a an the of to in on at by for from with and or but is are was were be been being it its this that these "
    "those as into than then there their they them he she we you i our your his her not no do does did done can "
    "could should would will shall may might must has have had which who whom what when where why how".split()
)


def units(text: str) -> set[str]:
    """CJK character bigrams (a lone hanzi counts as itself) plus Latin content words and numbers."""
    lowered = text.lower()
    found: set[str] = set()
    for run in _HAN_RUN.findall(lowered):
        found.update(run[i : i + 2] for i in range(max(1, len(run) - 1)))
    found.update(word for word in _WORD.findall(lowered) if word not in STOPWORDS)
    return found


def grounding(answer: str, passage: str) -> float:
    """Share of the answer's units found in the passage (0 when the answer has none)."""
    answer_units = units(answer)
    if not answer_units:
        return 0.0
    return len(answer_units & units(passage)) / len(answer_units)


def normalize(text: str) -> str:
    """Lowercase without spaces and punctuation: what two near-identical strings have in common."""
    return _NOT_TEXT.sub("", text.lower())


def copies_passage(question: str, passage: str) -> bool:
    """True when the question is (almost) a sentence lifted from the passage: at least 90 % of its
    normalised characters form one contiguous run of the passage. A real question shares a phrase with
    its passage but adds its own question words ("哪些", "how often")."""
    q, p = normalize(question), normalize(passage)
    if len(q) < 8:
        return False
    match = SequenceMatcher(None, q, p, autojunk=False).find_longest_match(0, len(q), 0, len(p))
    return match.size >= 0.9 * len(q)


def is_question(text: str) -> bool:
    """A question mark or an interrogative word: small teachers often write a statement instead."""
    return bool(_ZH_QUESTION.search(text) if is_chinese(text) else _EN_QUESTION.search(text))


def answer_context(passage: str, answer: str) -> str:
    """The sentence(s) of `passage` holding `answer` (the whole passage if it is not found verbatim)."""
    at = passage.find(answer)
    if at < 0:
        return passage
    start = max(passage.rfind(mark, 0, at) for mark in "。；！？!?;\n") + 1
    ends = [e for e in (passage.find(mark, at + len(answer)) for mark in "。；！？!?;\n") if e >= 0]
    return passage[start : min(ends) if ends else len(passage)]


def question_fits(question: str, answer: str, passage: str) -> float:
    """Share of the question's units found around its answer: a question about another sentence (or
    about nothing in the passage) scores near 0, one that rephrases the answer's sentence scores high."""
    return grounding(question, answer_context(passage, answer))


def check_item(item: Item, passage: str, kind: str, config: SynthConfig, answer_first: bool = False,
               examples: str = "") -> str | None:
    """The first reason to drop `item`, or None to keep it (dedup and the judge come later).

    `answer_first`: the answer is a clause of the passage (grounded by construction), so what needs
    checking is whether the question asks about it. `examples`: the prompt's worked examples, which a
    small teacher sometimes copies instead of writing its own question."""
    low, high = config.summary_chars if kind == "summary" else config.answer_chars
    if len(item.answer) < low:
        return "answer_too_short"
    if len(item.answer) > high:
        return "answer_too_long"
    if item.question is not None:
        q_low, q_high = config.question_chars
        if len(item.question) < q_low:
            return "question_too_short"
        if len(item.question) > q_high:
            return "question_too_long"
        if not is_question(item.question):
            return "not_a_question"
        if copies_passage(item.question, passage):
            return "question_copies_passage"
        if examples and copies_passage(item.question, examples):
            return "question_copies_prompt"
        if normalize(item.answer) == normalize(item.question):
            return "answer_repeats_question"
        if len(normalize(item.answer)) >= 4 and normalize(item.answer) in normalize(item.question):
            return "question_contains_answer"
        if _ASKS_NUMBER.search(item.question) and not _DIGIT.search(item.answer):
            return "answer_type_mismatch"
    if normalize(item.answer) and normalize(item.answer) == normalize(passage):
        return "answer_copies_passage"
    if grounding(item.answer, passage) < config.min_grounding:
        return "ungrounded_answer"
    if answer_first and item.question is not None and question_fits(item.question, item.answer, passage) < config.min_question_fit:
        return "question_off_answer"
    return None


class QuestionDedup:
    """Near-duplicate questions across the whole dataset, by character-trigram Jaccard.

    An inverted index from trigram to kept questions means each new question is compared only with
    those sharing a trigram, not with every question kept so far.
    """

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.kept: list[set[str]] = []
        self.index: dict[str, list[int]] = defaultdict(list)

    @staticmethod
    def shingles(text: str) -> set[str]:
        norm = normalize(text)
        return {norm[i : i + 3] for i in range(max(1, len(norm) - 2))}

    def matches(self, question: str) -> bool:
        """True if a near-identical question was added before."""
        grams = self.shingles(question)
        shared: dict[int, int] = defaultdict(int)
        for gram in grams:
            for other in self.index.get(gram, ()):
                shared[other] += 1
        return any(common / (len(grams) + len(self.kept[other]) - common) >= self.threshold
                   for other, common in shared.items())

    def add(self, question: str) -> None:
        grams = self.shingles(question)
        for gram in grams:
            self.index[gram].append(len(self.kept))
        self.kept.append(grams)

    def seen(self, question: str) -> bool:
        """True if a near-identical question was already added; otherwise remember this one."""
        if self.matches(question):
            return True
        self.add(question)
        return False


def eval_question_index(paths: list, threshold: float) -> QuestionDedup | None:
    """The questions of eval files (JSONL records with a "question" field), for the eval-overlap check."""
    if not paths:
        return None
    from wattlm.errors import WattError
    from wattlm.shared.records import jsonl_records

    index = QuestionDedup(threshold)
    for path in paths:
        questions = [r["question"] for r in jsonl_records(path) if isinstance(r.get("question"), str)]
        if not questions:
            raise WattError(f"{path}: eval_sets need JSONL records with a 'question' field")
        for question in questions:
            index.add(question)
    return index
