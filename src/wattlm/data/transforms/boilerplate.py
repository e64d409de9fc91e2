"""Boilerplate lines: found from the corpus itself (lines repeated across a source group) and from a
short fixed list of Chinese web debris.

trafilatura removes most page chrome, but not what sits inside the article container: read counters,
repost notes, copyright lines, "上一篇/下一篇" links. A fixed list cannot know a site's own phrases,
while the corpus can: a line that recurs in many documents of the same group (same folder and file
type, or the same JSONL/CSV file) is a template, not content. In short lines digits are masked before
counting, so "查看: 2,215 | 回复: 5" and "查看: 1,140 | 回复: 4" are the same line.

Run alone, this step needs the whole corpus before it can yield the first document (a barrier): it
holds the documents in memory. The sharded executor instead runs the counting pass (`count_corpus`)
over all shards first and gives every shard's copy of the step its part of the table (`use_counts`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import PurePosixPath

from pydantic import Field

from wattlm.data.base import Step, StepParams
from wattlm.data.document import Document

MIN_TEMPLATE_LINES = 3
MASK_MAX_CHARS = 40
_DIGITS = re.compile(r"\d+")
_CONTENT = re.compile(r"[A-Za-z\u4e00-\u9fff]")  # a letter or a common hanzi
# Chinese web debris that is never content, whatever the site. Each pattern must match a whole line
# (after stripping) or the line's start, so a sentence that merely mentions 版权 is kept.
DEBRIS_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"^.{0,20}(转载请注明|未经(许可|授权|允许)[^。]{0,10}不得转载|本文转载自|来源[:：].{0,30}$)",
    r"^(阅读|浏览|点击|查看|访问)(次数|量|数)?\s*[:：]?\s*[\d,]+",
    r"^.{0,10}(阅读|浏览|点击|访问)(次数|量)\s*[:：]",
    r"^(上一篇|下一篇|上一条|下一条)\s*[:：]?",
    r"(版权所有|保留所有权利|all rights reserved|copyright\s*©?|©)",
    r"[a-z京沪津渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼]icp[备证]",
    r"^(责任编辑|编辑|审核|校对)\s*[:：]\s*\S{1,12}$",
    r"^(分享到|扫一扫|返回顶部|打印本页|关闭窗口|【打印】|【关闭】)",
    r"^(登录|注册)\s*[|｜/]\s*(注册|登录)",
)]


def source_group(source: str) -> str:
    """The group whose documents share templates: records of one file, else folder + extension."""
    if "#" in source:
        return source.split("#", 1)[0]
    path = PurePosixPath(source)
    return f"{path.parent}/*{path.suffix.lower()}"


def line_key(line: str) -> str:
    """The line as counted: stripped, and for short lines with digits masked (counters, dates in a
    by-line). Long lines keep their digits: two sentences that differ only in a number are content."""
    stripped = line.strip()
    return _DIGITS.sub("0", stripped) if len(stripped) <= MASK_MAX_CHARS else stripped


def is_debris(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) <= 120 and any(pattern.search(stripped) for pattern in DEBRIS_PATTERNS)


def _has_template(lines: list[str]) -> bool:
    """Only documents of several lines can carry template lines around their content; a one- or
    two-line record (a JSONL row, a short note) is all content, however alike its siblings are."""
    return sum(1 for line in lines if line.strip()) >= MIN_TEMPLATE_LINES


class BoilerplateParams(StepParams):
    min_docs: int = Field(
        3, ge=2, description="A line is boilerplate if it occurs in at least this many documents of its group ..."
    )
    min_share: float = Field(0.3, gt=0.0, le=1.0, description="... and in at least this share of the group's documents.")
    use_fixed_list: bool = Field(True, description="Also remove the fixed Chinese web debris lines (DEBRIS_PATTERNS).")


class BoilerplateRemover(Step):
    """Removes debris lines and lines repeated in >= `min_docs` and >= `min_share` of a group's documents.

    Never drops a document itself: one left empty or short is dropped by the filters after it.
    """

    name = "remove_boilerplate"
    phase = "clean"
    Params = BoilerplateParams
    counts_corpus = True

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self.removed: Counter[str] = Counter()  # masked line -> documents it was removed from
        self.lines_removed = 0
        # Group -> repeated lines, from `repeated_lines` over the whole corpus. None: count the
        # documents this step is given (holding them all).
        self.table: dict[str, set[str]] | None = None

    def count_corpus(self, shards: Sequence[Iterable[Document]]) -> list[dict[str, set[str]]]:
        """One pass over every shard: the table over all documents, cut to the groups each shard holds."""
        shard_groups: list[set[str]] = [set() for _ in shards]

        def all_docs() -> Iterator[Document]:
            for index, docs in enumerate(shards):
                for doc in docs:
                    shard_groups[index].add(source_group(doc.source))
                    yield doc

        table = self.repeated_lines(all_docs())
        return [{group: table[group] for group in groups if group in table} for groups in shard_groups]

    def use_counts(self, counts: dict[str, set[str]]) -> None:
        self.table = counts

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        if self.table is None:
            docs = list(docs)
            repeated = self.repeated_lines(docs)
        else:
            repeated = self.table
        for doc in docs:
            kept_lines = []
            removed_here: set[str] = set()
            lines = doc.text.split("\n")
            group_lines = repeated.get(source_group(doc.source), set()) if _has_template(lines) else set()
            for line in lines:
                key = line_key(line)
                if key and (key in group_lines or (self.params.use_fixed_list and is_debris(line))):
                    self.lines_removed += 1
                    removed_here.add(key)
                    continue
                kept_lines.append(line)
            self.removed.update(sorted(removed_here))  # sorted: the same order in every process
            if removed_here:
                doc.text = "\n".join(kept_lines).strip()
            yield doc

    def repeated_lines(self, docs: Iterable[Document]) -> dict[str, set[str]]:
        """Group -> masked lines that occur in enough of its documents."""
        group_sizes: Counter[str] = Counter()
        line_docs: dict[str, Counter[str]] = defaultdict(Counter)
        for doc in docs:
            group = source_group(doc.source)
            group_sizes[group] += 1
            # Lines with no letter or hanzi (table rules, '---', bare numbers) carry layout, not
            # boilerplate: removing them would break Markdown tables.
            lines = doc.text.split("\n")
            if not _has_template(lines):
                continue
            keys = {line_key(line) for line in lines if _CONTENT.search(line)}
            line_docs[group].update(keys)
        return {
            group: {key for key, n in counts.items()
                    if n >= self.params.min_docs and n >= self.params.min_share * group_sizes[group]}
            for group, counts in line_docs.items()
        }

    def report_extras(self) -> dict[str, object]:
        ranked = sorted(self.removed.items(), key=lambda item: (-item[1], item[0]))[:20]
        top = [{"line": line, "docs": n} for line, n in ranked]
        return {"boilerplate_top": top, "boilerplate_lines_removed": self.lines_removed}

    def extra_state(self) -> dict[str, object]:
        return {"removed": dict(self.removed), "lines_removed": self.lines_removed}

    def merge_extra(self, extra: dict) -> None:
        self.removed.update(extra["removed"])
        self.lines_removed += extra["lines_removed"]
