"""Refusal pairs: questions the corpus cannot answer, whose right answer is the refusal (issue 11, item 6).

A task model trained only on answerable pairs answers everything: asked about cooking with no passage
(or with a passage about transformers) it repeats the question or invents. Mixing in examples whose
answer is the refusal sentence (`shared/refusal.py`, the server's own words) teaches it to say so.
With `refusal_ratio: r`, the train split gets round(r x qa / (1 - r)) refusal examples beside its `qa`
answerable pairs, so refusals are the share r of its QA-shaped examples. They come in three shapes,
in turn (three closed-book examples to one of each other shape: `CYCLE`), all in the one QA wording (`shared/qa_format.py`) that the model is trained and served with:

- `closed_book`: a question about another subject, no passage; Chinese and English in turn, whatever
  the corpus's languages (a user may ask in either);
- `off_topic_passage`: the same kind of question over a passage of the corpus;
- `other_passage`: a question synthesized from the corpus, over a passage of *another document* that
  holds none of its answer (what the model sees when retrieval brings the wrong passage).

The off-topic questions below were written for wattlm (cooking, travel, sport, health, money, school,
pets, software; Chinese and English) and none is in the hold-out set or the KB's calibration list. The
held-out split gets none: it measures answering.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from wattlm.shared.qa_format import qa_prompt
from wattlm.shared.refusal import refusal_for
from wattlm.synth.chunking import Chunk

OFF_TOPIC_ZH = (
    "清蒸鱼要蒸几分钟才熟？", "饺子馅里放什么菜比较香？", "做蛋糕时黄油要软化到什么程度？", "米饭煮糊了怎么去掉焦味？",
    "去云南旅游几月份最合适？", "坐飞机可以带多少毫升的液体？", "护照过期了在哪里补办？", "自驾去西藏需要准备什么？",
    "篮球比赛每节打多少分钟？", "游泳前为什么要做热身？", "乒乓球发球有哪些规则？", "跑步膝盖疼应该怎么调整？",
    "失眠的时候喝牛奶有用吗？", "小孩发烧多少度需要去医院？", "每天应该喝多少水？", "近视眼能通过锻炼恢复吗？",
    "信用卡最低还款会产生利息吗？", "基金定投每个月投多少合适？", "公积金贷款的利率是多少？", "年终奖怎么计算个税？",
    "初中数学的勾股定理怎么证明？", "高考志愿填报有哪些技巧？", "背英语单词有什么好方法？", "幼儿园入学需要准备哪些材料？",
    "狗狗几个月可以打疫苗？", "猫咪不吃猫粮怎么办？", "金鱼多久换一次水？", "养兔子需要注意什么？",
    "电脑开机很慢怎么解决？", "Excel怎么把两列数据合并？", "手机照片误删了还能恢复吗？", "怎样给路由器设置密码？",
    "《红楼梦》的作者是谁？", "京剧里的生旦净丑分别指什么？", "中秋节为什么要吃月饼？", "围棋的棋盘有多少个交叉点？",
    "阳台上适合种什么蔬菜？", "绿萝叶子发黄是什么原因？", "新房装修后多久可以入住？", "租房合同到期前搬走要赔钱吗？",
)
OFF_TOPIC_EN = (
    "How long should I boil an egg for a soft yolk?", "What is a good substitute for buttermilk in pancakes?",
    "Which month is best for visiting Iceland?", "How early should I arrive at the airport for an international flight?",
    "How many players are on a rugby union team?", "What is the offside rule in ice hockey?",
    "How many hours of sleep does a teenager need?", "Is it safe to exercise with a mild cold?",
    "What is the difference between a Roth IRA and a traditional IRA?", "How is a credit score calculated?",
    "How do I help my child learn multiplication tables?", "What is the capital of Australia?",
    "How often should I feed an adult cat?", "Why does my dog eat grass?",
    "How do I undo a commit in git?", "What does a CSS flexbox container do?",
    "Who painted the Mona Lisa?", "Why do leaves change colour in autumn?",
    "How do I get red wine out of a carpet?", "How much should I tip in a restaurant in New York?",
)
SHAPES = ("closed_book", "off_topic_passage", "other_passage")
# The order shapes are taken in: three closed-book examples to one of each passage shape. A model asked
# without a KB needs the closed-book refusal (half of them in each language, so about as many in the
# corpus's language as one in three used to give); a grounded answer has the server's own refusal
# (`serve/citations.py`), and passage refusals cost open-book answers (docs/kb.md, measured).
CYCLE = ("closed_book", "closed_book", "closed_book", "off_topic_passage", "other_passage")
# In cache keys of datasets with refusals (synth/config.py, synth/remix.py); bumped when the examples
# change: 2 = closed-book questions in Chinese and English in turn; 3 = CYCLE (was one shape of each).
REFUSALS_VERSION = 3


@dataclass(frozen=True)
class Answerable:
    """A kept QA pair of the train split: its question and answer, and the passage it was asked about."""

    question: str
    answer: str
    chunk: Chunk
    lang: str


def refusal_count(answerable: int, ratio: float) -> int:
    """Refusals to add beside `answerable` pairs so that they are the share `ratio` of all of them."""
    if ratio <= 0 or answerable <= 0:
        return 0
    return round(ratio * answerable / (1.0 - ratio))


def _record(question: str, passage: Chunk | None, lang: str, shape: str) -> dict:
    prompt = qa_prompt(question, passage.text if passage is not None else None, lang)[0]
    return {
        "messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": refusal_for(lang)}],
        "chunk_id": passage.id if passage is not None else None,
        "doc_id": passage.doc_id if passage is not None else None,
        "teacher": "refusal",
        "kind": "refusal",
        "grounding": 0.0,
        "question_source": shape,
    }


def _other_passage(pair: Answerable, chunks: Sequence[Chunk], rng: random.Random) -> Chunk | None:
    """A passage of another document, in the pair's language, holding no character run of its answer."""
    answer = pair.answer.strip()
    pool = [c for c in chunks if c.doc_id != pair.chunk.doc_id and c.lang == pair.lang and answer not in c.text]
    return rng.choice(pool) if pool else None


def refusal_records(pairs: Sequence[Answerable], chunks: Sequence[Chunk], ratio: float, seed: int,
                    shapes: Sequence[str] = SHAPES) -> list[dict]:
    """The refusal examples for a train split of `pairs` (seeded: a rerun writes the same ones), of `shapes`
    only, taken in CYCLE's order."""
    wanted = refusal_count(len(pairs), ratio)
    cycle = [shape for shape in CYCLE if shape in shapes]
    if not wanted or not cycle:
        return []
    rng = random.Random(seed)
    langs = [pair.lang for pair in pairs]
    questions = {"zh": list(OFF_TOPIC_ZH), "en": list(OFF_TOPIC_EN)}
    for listed in questions.values():
        rng.shuffle(listed)
    used = {"zh": 0, "en": 0}

    def off_topic(lang: str) -> str:
        listed = questions[lang]
        question = listed[used[lang] % len(listed)]
        used[lang] += 1
        return question

    records = []
    attempts = closed_books = 0
    while len(records) < wanted and attempts < wanted * 4:
        shape = cycle[attempts % len(cycle)]
        attempts += 1
        lang = rng.choice(langs)
        lang_chunks = [c for c in chunks if c.lang == lang] or list(chunks)
        if shape == "closed_book":
            # Chinese and English in turn, whatever the corpus's share: a user may ask in either, and a
            # Chinese corpus gave almost no English refusals, so English questions were all answered.
            lang = ("zh", "en")[closed_books % 2]
            closed_books += 1
            records.append(_record(off_topic(lang), None, lang, shape))
        elif shape == "off_topic_passage":
            records.append(_record(off_topic(lang), rng.choice(lang_chunks), lang, shape))
        else:
            pair = rng.choice(pairs)
            passage = _other_passage(pair, chunks, rng)
            if passage is not None:  # a one-document corpus has no other passage: another shape fills in
                records.append(_record(pair.question, passage, pair.lang, shape))
    return records


def mix_refusals(train_rows: list[dict], pairs: Sequence[Answerable], chunks: Sequence[Chunk], ratio: float,
                 seed: int, shapes: Sequence[str] = SHAPES) -> tuple[list[dict], list[dict]]:
    """(the train split with refusal examples shuffled in, those refusal examples). `pairs` are the train
    split's answerable QA pairs and `chunks` its passages (train documents only, so held-out ones stay
    unseen). Seeded: `watt synth` and a remix of its dataset (synth/remix.py) write the same rows."""
    records = refusal_records(pairs, chunks, ratio, seed, shapes)
    rows = train_rows + records
    random.Random(seed).shuffle(rows)
    return rows, records
