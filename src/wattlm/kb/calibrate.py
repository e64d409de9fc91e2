"""The "no support" threshold of a KB, measured on the KB itself when it is built.

Two distributions of the support score (retrieve.support_score) of a question's best hit in this KB:
- in scope: a question made from a sample of the KB's own chunks (the chunk's heading plus a sentence
  of it, the way a user who had read the passage would ask); seeded, so a rebuild measures the same;
- out of scope: a fixed set of questions about other subjects (cooking, sport, law, software, ...),
  in Chinese and English.
The threshold sits between them: the midpoint of the out-of-scope 90th percentile and the in-scope
10th percentile (if those overlap, the out-of-scope 90th percentile). A hit at or above it is
`supported`; a question whose hits are all below it has nothing in the KB to answer from.
"""

from __future__ import annotations

import random
import re

import numpy as np

from wattlm.kb.chunking import Chunk
from wattlm.kb.index import KbIndex
from wattlm.kb.retrieve import search

OFF_TOPIC = (
    "红烧肉怎么做才好吃？", "世界杯足球赛每几年举办一次？", "如何给猫咪剪指甲？", "Python 列表推导式怎么写？",
    "离婚后孩子的抚养权如何判定？", "治疗感冒应该吃什么药？", "北京到上海的高铁要坐多久？", "如何提高英语口语水平？",
    "股票市盈率是什么意思？", "唐诗三百首的编者是谁？", "怎样养好一盆多肉植物？", "马拉松比赛前一周应该怎么训练？",
    "手机电池不耐用怎么办？", "二手房交易需要缴纳哪些税费？", "怎么做一份好吃的番茄炒蛋？", "小学生如何培养阅读习惯？",
    "How do I bake sourdough bread at home?", "Who won the 2018 FIFA World Cup?",
    "What is the best way to learn the guitar?", "How do I reset a forgotten Gmail password?",
    "What are the symptoms of seasonal flu?", "How long does it take to fly from London to Tokyo?",
    "How do I write a for loop in JavaScript?", "What is the plot of Romeo and Juliet?",
)
_SENTENCE = re.compile(r"[^。！？；!?;\n]{8,80}[。！？；!?;]?")


def _pseudo_questions(chunks: list[Chunk], sample: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    picked = rng.sample(chunks, min(sample, len(chunks)))
    questions = []
    for chunk in picked:
        sentences = _SENTENCE.findall(chunk.text) or [chunk.text[:80]]
        sentence = rng.choice(sentences).strip()
        questions.append(f"{chunk.heading} {sentence}".strip() if chunk.heading else sentence)
    return questions


def _best_support(index: KbIndex, questions: list[str]) -> np.ndarray:
    return np.array([max((hit.support for hit in search(index, q, k=5, threshold=0.0)), default=0.0)
                     for q in questions])


def calibrate(chunks: list[Chunk], vectors: np.ndarray, sample: int = 40, seed: int = 0) -> dict[str, float]:
    """{"value": threshold, and the percentiles it came from} for `kb.json`."""
    index = KbIndex(chunks, vectors, {})
    in_scope = _best_support(index, _pseudo_questions(chunks, sample, seed))
    off_topic = _best_support(index, list(OFF_TOPIC))
    if not len(in_scope):
        return {"value": 1.0, "in_scope_p10": 0.0, "off_topic_p90": 0.0}
    low_in, high_off = float(np.percentile(in_scope, 10)), float(np.percentile(off_topic, 90))
    value = (low_in + high_off) / 2 if low_in > high_off else high_off
    return {"value": round(value, 4), "in_scope_p10": round(low_in, 4), "off_topic_p90": round(high_off, 4),
            "in_scope_median": round(float(np.median(in_scope)), 4),
            "off_topic_max": round(float(np.max(off_topic)), 4)}
