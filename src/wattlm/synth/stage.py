"""`synthesize`: corpus -> chunks -> teacher -> parsed, filtered, deduplicated SFT examples -> dataset.

The dataset folder holds `train/shard-00000.jsonl` and `heldout/shard-00000.jsonl` (the layout every
other JSONL dataset has, so `watt train --method sft --data <it>` reads it) plus `stats.json`, which
counts every request, every teacher failure and every dropped item by reason, and `rag.jsonl`: the QA
pairs of held-out documents as a rag eval file (synth/rag.py). The artifact's parents
are the corpus (role "source") and, when it is registered, the teacher model (role "teacher"); its
cache key covers the corpus, the teacher, the prompt files and the settings.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from wattlm.cache import content_key, fingerprint
from wattlm.errors import WattError
from wattlm.registry import Artifact, Registry
from wattlm.shared.records import atomic_write_jsonl, atomic_write_text
from wattlm.synth.chunking import Chunk, chunk_document
from wattlm.synth.config import SynthConfig
from wattlm.synth.corpus import corpus_documents
from wattlm.synth.filters import QuestionDedup, answer_context, check_item, eval_question_index, grounding
from wattlm.synth.insitu import insitu_question
from wattlm.synth.journal import JournalledTeacher, ReplyJournal
from wattlm.synth.parsing import Item, parse_answer, parse_question, parse_reply, parse_verdict
from wattlm.synth.prompts import load_prompt, prompts_digest
from wattlm.synth.rag import write_rag
from wattlm.synth.records import sft_record
from wattlm.synth.refusals import Answerable, mix_refusals
from wattlm.synth.spans import answer_spans
from wattlm.synth.teachers.base import Teacher, TeacherPrompt


@dataclass
class Job:
    """One teacher request: a chunk, what to ask for, and which sample of it this is."""

    chunk: Chunk
    kind: str
    sample: int
    answer: str | None = None  # answer-first QA: the passage clause the teacher writes a question for
    reply: str | None = None


@dataclass
class Candidate:
    job: Job
    item: Item
    grounding: float
    source: str = "teacher"  # who wrote the question: the teacher, or the in-situ rule (insitu.py)


@dataclass
class Tally:
    dropped: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)


def _lang(chunk: Chunk, config: SynthConfig) -> str:
    return chunk.lang if config.language == "auto" else config.language


def _seed(config: SynthConfig, *parts: object) -> int:
    """A per-request seed: reruns sample the same replies; different samples of a chunk differ."""
    blob = json.dumps([config.seed, *parts]).encode()
    return int(hashlib.sha1(blob).hexdigest()[:8], 16) & 0x7FFFFFFF


def select_chunks(corpus: Artifact, config: SynthConfig, tally: Tally) -> list[Chunk]:
    max_chars = {"zh": config.chunk_chars_cjk, "en": config.chunk_chars_latin}
    min_chars = {"zh": config.min_chunk_chars_cjk, "en": config.min_chunk_chars_latin}
    chunks: list[Chunk] = []
    for doc_id, text, split in corpus_documents(corpus, config.heldout_fraction, config.seed):
        for chunk in chunk_document(doc_id, text, split, max_chars, min_chars):
            if isinstance(chunk, str):
                tally.dropped[chunk] += 1
            else:
                chunks.append(chunk)
    if config.max_chunks is not None and len(chunks) > config.max_chunks:
        # A seeded sample across all documents (not the first N), so both splits stay represented.
        chunks = random.Random(config.seed).sample(chunks, config.max_chunks)
        chunks.sort(key=lambda c: (c.split, c.doc_id, c.index))
    return chunks


def plan_jobs(chunks: list[Chunk], config: SynthConfig, style: str, tally: Tally) -> list[Job]:
    """Chat teachers write all QA pairs of a chunk in one reply. A few-shot QA prompt asks for one
    question per request: for a clause of the passage (answer-first), or freely sampled."""
    jobs = []
    for chunk in chunks:
        for kind in config.kinds:
            if kind != "qa" or style != "completion":
                jobs.append(Job(chunk, kind, 0))
            elif load_prompt(kind, _lang(chunk, config), style).reply == "question":
                spans = answer_spans(chunk.text, _lang(chunk, config), config.questions_per_chunk,
                                     _seed(config, chunk.id, "spans"), prefer=config.answer_span)
                if not spans:
                    tally.dropped["no_answer_span"] += 1
                jobs.extend(Job(chunk, kind, sample, answer=span) for sample, span in enumerate(spans))
            else:
                jobs.extend(Job(chunk, kind, sample) for sample in range(config.questions_per_chunk))
    return jobs


def _prompt(job: Job, config: SynthConfig, style: str) -> TeacherPrompt:
    template = load_prompt(job.kind, _lang(job.chunk, config), style)
    # Answer-first: the small teacher sees only the sentence holding its answer, like its one-sentence
    # examples (on Gemma 3 270M: 6 of 20 questions kept vs 2 of 20 with the whole chunk). The SFT
    # example still carries the whole chunk.
    passage = answer_context(job.chunk.text, job.answer) if job.answer is not None else job.chunk.text
    return TeacherPrompt(
        text=template.render(passage=passage, n=config.questions_per_chunk, answer=job.answer or ""),
        max_tokens=config.max_tokens, temperature=config.temperature, stop=template.stop,
        seed=_seed(config, job.chunk.id, job.kind, job.sample),
    )


def ask(teacher: Teacher, jobs: list[Job], config: SynthConfig, progress, task_id) -> None:
    """Fill `job.reply` for every job, a few batches of `concurrency` at a time (for the progress bar)."""
    step = config.concurrency * 2
    for start in range(0, len(jobs), step):
        batch = jobs[start : start + step]
        style = teacher.style
        replies = teacher.complete([_prompt(job, config, style) for job in batch])
        if teacher.style != style:  # an "auto" endpoint turned out to serve a base model: ask again
            replies = teacher.complete([_prompt(job, config, teacher.style) for job in batch])
        for job, reply in zip(batch, replies, strict=True):
            job.reply = reply
        if progress is not None:
            progress.advance(task_id, len(batch))


def _check(job: Job, item: Item, examples: str, config: SynthConfig, dedup: QuestionDedup,
           eval_questions: QuestionDedup | None) -> str | None:
    """The reason to drop `item`, or None (which also records its question for the dedup)."""
    reason = check_item(item, job.chunk.text, job.kind, config, answer_first=job.answer is not None,
                        examples=examples)
    if reason is None and item.question is not None:
        if eval_questions is not None and eval_questions.matches(item.question):
            reason = "eval_overlap"  # near an eval question: training on it would inflate the eval
        elif dedup.seen(item.question):
            reason = "duplicate_question"
    return reason


def screen(jobs: list[Job], config: SynthConfig, style: str, tally: Tally,
           eval_questions: QuestionDedup | None = None) -> list[Candidate]:
    """Parse every reply and apply the per-item filters, the eval overlap check and the dataset-wide
    question dedup. With `insitu_fallback`, a Chinese answer-first job whose teacher question was
    dropped gets an in-situ question instead (`insitu.py`); its drops are counted as `insitu_<reason>`."""
    dedup = QuestionDedup(config.dedup_threshold)
    kept: list[Candidate] = []
    for job in jobs:
        template = load_prompt(job.kind, _lang(job.chunk, config), style)
        if job.reply is None:
            items, reason = [], "teacher_failed"
        elif template.reply == "question" and job.answer is not None:
            items, reason = parse_question(job.reply, job.answer)
        else:
            items, reason = parse_reply(template.reply_prefix + job.reply, job.kind, template.reply)
        if reason:
            tally.dropped[reason] += 1
        found = 0
        for item in items:
            reason = _check(job, item, template.examples, config, dedup, eval_questions)
            if reason:
                tally.dropped[reason] += 1
            else:
                kept.append(Candidate(job, item, grounding(item.answer, job.chunk.text)))
                found += 1
        if found or job.answer is None or not config.insitu_fallback or _lang(job.chunk, config) != "zh":
            continue
        question = insitu_question(job.chunk.text, job.answer)
        if question is None:
            tally.dropped["insitu_no_question"] += 1
            continue
        item = Item(question, job.answer)
        reason = _check(job, item, template.examples, config, dedup, eval_questions)
        if reason:
            tally.dropped[f"insitu_{reason}"] += 1
        else:
            kept.append(Candidate(job, item, grounding(item.answer, job.chunk.text), source="insitu"))
    return kept


def _ask_all(teacher: Teacher, prompts: list[TeacherPrompt], config: SynthConfig) -> list[str | None]:
    replies: list[str | None] = []
    for start in range(0, len(prompts), config.concurrency * 2):
        replies.extend(teacher.complete(prompts[start : start + config.concurrency * 2]))
    return replies


def roundtrip(teacher: Teacher, candidates: list[Candidate], config: SynthConfig, tally: Tally) -> list[Candidate]:
    """Round-trip consistency (Alberti et al., ACL 2019): the teacher answers each question from the whole
    passage the SFT example will carry; a pair survives only if that answer matches its own. A question
    that does not single out its answer in the passage (a frequent failure of small teachers) is dropped,
    whatever the lexical filters said. Questions without a fixed answer (summaries) pass untouched."""
    from wattlm.shared.text import char_f1

    asked = [c for c in candidates if c.item.question is not None]
    prompts = []
    for cand in asked:
        template = load_prompt("answer", _lang(cand.job.chunk, config), teacher.style)
        text = template.render(passage=cand.job.chunk.text, question=cand.item.question)
        prompts.append(TeacherPrompt(text, max_tokens=32, temperature=0.0, stop=template.stop))
    verdicts = {}
    for cand, reply in zip(asked, _ask_all(teacher, prompts, config), strict=True):
        answer = parse_answer(reply)
        if answer is None:
            verdicts[id(cand)] = "roundtrip_unanswered"
        elif char_f1(answer, cand.item.answer) < 100 * config.min_roundtrip_f1:
            verdicts[id(cand)] = "roundtrip_mismatch"
    for reason in verdicts.values():
        tally.dropped[reason] += 1
    return [c for c in candidates if id(c) not in verdicts]


def judge(teacher: Teacher, candidates: list[Candidate], config: SynthConfig, tally: Tally) -> list[Candidate]:
    """Ask the teacher whether each answer is supported by its passage; keep only the "yes" ones."""
    prompts = []
    for cand in candidates:
        template = load_prompt("judge", _lang(cand.job.chunk, config), teacher.style)
        text = template.render(passage=cand.job.chunk.text, question=cand.item.question or "-",
                               answer=cand.item.answer)
        prompts.append(TeacherPrompt(text, max_tokens=4, temperature=0.0, stop=template.stop))
    kept = []
    for cand, reply in zip(candidates, _ask_all(teacher, prompts, config), strict=True):
        verdict = parse_verdict(reply)
        if verdict:
            kept.append(cand)
        else:
            tally.dropped["judge_rejected" if verdict is False else "judge_unparseable"] += 1
    return kept


# Bumped whenever the same replies would become different examples (record wording, spans, in-situ rules).
RECORDS_VERSION = 4


def synth_key(registry: Registry, corpus: Artifact, teacher: Teacher, config: SynthConfig) -> str:
    """Corpus and teacher by content (a registered teacher's content key, not its id), prompts, settings."""
    eval_digests = [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in config.eval_sets]
    described = teacher.describe()
    if teacher.registry_id:
        described = {**described, "model": content_key(registry.get(teacher.registry_id))}
    return fingerprint("synth", RECORDS_VERSION, content_key(corpus), described, prompts_digest(),
                       config.cache_fields(), eval_digests)


def synthesize(registry: Registry, corpus: Artifact, teacher: Teacher, config: SynthConfig,
               name: str | None = None, progress: bool = True) -> tuple[Artifact, bool]:
    """Synthesize a grounded SFT dataset from `corpus` with `teacher`; (artifact, reused from cache).

    Teacher replies are journalled under `$WATT_HOME/runs/<key>/` as they arrive (`journal.py`): a rerun
    after a crash asks the teacher only what it has no reply for. The folder goes once registered."""
    key = synth_key(registry, corpus, teacher, config)
    work = registry.home / "runs" / key

    def produce(staged: Path) -> dict:
        journal = ReplyJournal(work / "replies.jsonl")
        try:
            return _synthesize_into(staged, corpus, JournalledTeacher(teacher, journal), config, name, progress)
        finally:
            journal.close()

    art, reused = registry.find_or_produce(key, produce)
    shutil.rmtree(work, ignore_errors=True)
    return art, reused


def _synthesize_into(staged: Path, corpus: Artifact, teacher: Teacher, config: SynthConfig, name: str | None,
                     progress: bool) -> dict:
    """Chunks -> teacher -> filters -> the train/held-out shards and stats.json in `staged`; the
    registration fields."""
    started = time.monotonic()
    tally = Tally()
    chunks = select_chunks(corpus, config, tally)
    if not chunks:
        raise WattError(f"dataset {corpus.name} ({corpus.id}) has no chunk long enough to ask about "
                        f"(min_chunk_chars_cjk={config.min_chunk_chars_cjk}, "
                        f"min_chunk_chars_latin={config.min_chunk_chars_latin})")
    teacher.prepare()
    failures_before = Counter(teacher.failures)
    jobs = plan_jobs(chunks, config, teacher.style, tally)
    _run_teacher(teacher, jobs, config, progress)
    candidates = screen(jobs, config, teacher.style, tally, eval_question_index(config.eval_sets, config.eval_overlap))
    if config.roundtrip and candidates:
        candidates = roundtrip(teacher, candidates, config, tally)
    if config.judge and candidates:
        candidates = judge(teacher, candidates, config, tally)
    teacher_failures = teacher.failures - failures_before
    if not candidates:
        reasons = ", ".join(f"{k}={v}" for k, v in (tally.dropped + teacher_failures).most_common(5))
        raise WattError(f"synthesis kept no examples from {len(jobs)} teacher requests ({reasons}); "
                        f"see the teacher's replies with a smaller --max-chunks")
    seconds = time.monotonic() - started
    splits: dict[str, list[dict]] = {"train": [], "heldout": []}
    for cand in candidates:
        lang = _lang(cand.job.chunk, config)
        splits[cand.job.chunk.split].append(sft_record(cand.job.chunk, lang, cand.job.kind, cand.item,
                                                       teacher.name, cand.grounding, cand.source))
        tally.kept[cand.job.kind] += 1
    if not splits["train"]:
        raise WattError(f"synthesis kept {len(candidates)} examples, all from held-out documents: nothing to train on; "
                        f"raise --max-chunks or lower the corpus' held-out fraction")
    refusals = _add_refusals(splits, candidates, chunks, config)
    stats = {
        "chunks": len(chunks),
        "docs": len({c.doc_id for c in chunks}),
        "requests": len(jobs),
        "style": teacher.style,
        "teacher": teacher.describe(),
        "teacher_failures": dict(teacher_failures),
        "dropped": dict(tally.dropped.most_common()),
        "kept": dict(tally.kept),
        "question_source": dict(Counter(c.source for c in candidates if c.item.question is not None)),
        "examples": {split: len(rows) for split, rows in splits.items()},
        "refusals": dict(Counter(r["question_source"] for r in refusals)),
        "mean_grounding": round(sum(c.grounding for c in candidates) / len(candidates), 3),
        "seconds": round(seconds, 2),
        "examples_per_minute": round(len(candidates) / max(seconds, 1e-9) * 60, 2),
    }
    for split, rows in splits.items():
        atomic_write_jsonl(staged / split / "shard-00000.jsonl", rows)
    stats["rag_questions"] = write_rag(staged, corpus, candidates)  # eval labels, held-out documents only
    atomic_write_text(staged / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
    parents = [(corpus.id, "source")]
    if teacher.registry_id:
        parents.append((teacher.registry_id, "teacher"))
    metrics = {k: stats[k] for k in ("chunks", "requests", "examples", "kept", "question_source", "dropped", "refusals",
                                     "teacher_failures", "mean_grounding", "examples_per_minute", "rag_questions")}
    return dict(kind="dataset", name=name or f"{corpus.name}-synth", format="jsonl", parents=parents,
                recipe={"synth": config.model_dump(mode="json")}, metrics=metrics,
                meta={"teacher": teacher.describe(), "teacher_name": teacher.name, "prompts": prompts_digest(),
                      "kind": "sft"})


def _add_refusals(splits: dict[str, list[dict]], candidates: list[Candidate], chunks: list[Chunk],
                  config: SynthConfig) -> list[dict]:
    """With `refusal_ratio`, refusal examples (synth/refusals.py) shuffled into the train split; the held-out
    split stays answerable pairs only. Passages come from train documents, so held-out ones stay unseen."""
    if not config.refusal_ratio:
        return []
    pairs = [Answerable(c.item.question, c.item.answer, c.job.chunk, _lang(c.job.chunk, config)) for c in candidates
             if c.job.kind == "qa" and c.item.question and c.job.chunk.split == "train"]
    splits["train"], records = mix_refusals(splits["train"], pairs, [c for c in chunks if c.split == "train"],
                                            config.refusal_ratio, config.seed, config.refusal_shapes)
    return records


def _run_teacher(teacher: Teacher, jobs: list[Job], config: SynthConfig, progress: bool) -> None:
    if not progress:
        ask(teacher, jobs, config, None, None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("synth"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task_id = bar.add_task("teacher", total=len(jobs))
        ask(teacher, jobs, config, bar, task_id)
