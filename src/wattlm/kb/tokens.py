"""Words for BM25: jieba's search-mode segmentation for Chinese runs, lowercased words for Latin text.

Search mode also emits the short words inside long ones (变压器 -> 变压, 变压器), so a question that says
"变压器" finds a chunk that says "主变压器". A few function words that jieba keeps as tokens are dropped:
they occur in every chunk and only add noise to short questions.
"""

from __future__ import annotations

import re
from functools import lru_cache

_RUNS = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[A-Za-z0-9]+(?:[.\-'][A-Za-z0-9]+)*")
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
STOPWORDS = frozenset(
    "的 了 是 在 和 与 及 或 等 对 为 由 将 被 把 应 要 时 后 中 上 下 有 也 就 都 而 之 其 该 这 那 哪 什么 怎么 如何 "
    "哪些 为什么 吗 呢 吧 啊 请问 是否 多少 几 个 一 一个 "
    "a an the of to in on at for and or is are was were be been by with as it this that what which how "
    "why when who does do did should can from".split()
)


@lru_cache(maxsize=1)
def _jieba():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    return jieba


def tokenize(text: str) -> list[str]:
    """BM25 terms of `text` (the same function for chunks and for questions)."""
    words: list[str] = []
    for run in _RUNS.findall(text):
        if _CJK.match(run):
            words += _jieba().lcut_for_search(run)
        else:
            words.append(run.lower())
    return [word for word in words if word not in STOPWORDS]
