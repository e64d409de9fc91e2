"""Near-duplicate detection quality: planted near-copies among distinct documents on the same topics.

Base documents are assembled from clause pools of a few power-grid topics (Chinese) and English
counterparts, so unrelated documents share vocabulary and whole clauses, as real documents of one
industry do. Each planted copy of a base document gets one or two of: small edits, reordered
paragraphs, inserted boilerplate lines, conversion to traditional characters, changed dates. The
documents go through the pipeline's own Normalizer, LanguageTagger and NearDedup; a pair of
documents is "detected" when both end up in the same cluster.

    .venv/bin/python bench/data_dedup_bench.py               # 400 base documents, a few seconds
    .venv/bin/python bench/data_dedup_bench.py --docs 3000   # bigger run
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from functools import cache

from wattlm.data.dedup.minhash import NearDedup
from wattlm.data.document import Document
from wattlm.data.transforms.language import LanguageTagger
from wattlm.data.transforms.normalize import Normalizer

ZH_SUBJECTS = ["变电站运维人员", "输电线路巡视班组", "地区调度员", "配电自动化主站", "继电保护专业", "电缆运检班",
               "营销服务中心", "新能源场站", "检修分公司", "应急指挥部", "安全监察部", "计量中心"]
ZH_ACTIONS = ["应当核对设备运行方式", "需要测量接地电阻并记录", "按计划开展红外测温", "及时消除发现的设备缺陷",
              "严格执行两票三制", "检查避雷器泄漏电流读数", "复核保护定值单", "组织开展带电检测",
              "统计停电时户数", "核查用户负荷曲线", "更换老化的绝缘子串", "校验电能表误差"]
ZH_CONDITIONS = ["在迎峰度夏期间", "在台风预警发布后", "在每月例行巡视中", "在设备投运前", "在雷雨季节到来前",
                 "在负荷高峰时段", "在新设备验收时", "在春季安全大检查中", "在覆冰天气条件下", "在节假日保电期间"]
ZH_TAILS = ["发现异常立即向调度汇报", "结果录入生产管理系统", "重大问题报分管领导", "并做好书面记录",
            "确保电网安全稳定运行", "相关资料保存三年", "由工作负责人签字确认", "必要时申请停电处理"]
EN_SUBJECTS = ["the maintenance crew", "the control room operator", "the protection engineer", "each field team",
               "the asset manager", "the outage planner", "the substation supervisor", "the vegetation contractor"]
EN_ACTIONS = ["checks the breaker counters", "records the oil temperature", "verifies the relay settings",
              "measures the grounding resistance", "inspects the insulator strings", "reviews the load forecast",
              "updates the switching schedule", "clears trees near the conductors", "tests the battery bank"]
EN_CONDITIONS = ["before the summer peak", "after every storm", "during the monthly patrol", "before energising new plant",
                 "when an alarm persists", "at the start of each shift", "ahead of planned outages"]
BOILERPLATE = ["本文转载自澄江电力网，转载请注明出处", "阅读次数：{n}", "版权所有 © 2024 某某电力技术社区",
               "上一篇：关于加强安全管理的通知", "责任编辑：王某"]


def _date(rng: random.Random) -> str:
    return f"{rng.randint(2019, 2025)}年{rng.randint(1, 12)}月{rng.randint(1, 28)}日"


def zh_sentence(rng: random.Random) -> str:
    # About one sentence in five carries a date, as in real notices and plans.
    when = f"截至{_date(rng)}" if rng.random() < 0.2 else "本年度"
    return (f"{rng.choice(ZH_CONDITIONS)}，{rng.choice(ZH_SUBJECTS)}{rng.choice(ZH_ACTIONS)}，"
            f"{rng.choice(ZH_TAILS)}，{when}共完成{rng.randint(2, 300)}项。")


def en_sentence(rng: random.Random) -> str:
    return (f"{rng.choice(EN_CONDITIONS).capitalize()}, {rng.choice(EN_SUBJECTS)} {rng.choice(EN_ACTIONS)} and "
            f"logs {rng.randint(2, 300)} items by {rng.choice(['March', 'June', 'October'])} {rng.randint(1, 28)}.")


def base_document(rng: random.Random) -> str:
    english = rng.random() < 0.25
    make = en_sentence if english else zh_sentence
    paragraphs = [" ".join(make(rng) for _ in range(rng.randint(2, 3))) if english
                  else "".join(make(rng) for _ in range(rng.randint(2, 3))) for _ in range(rng.randint(4, 6))]
    header = f"Issued {rng.choice(['March', 'June', 'October'])} {rng.randint(1, 28)}, {rng.randint(2019, 2025)}" \
        if english else f"发布日期：{_date(rng)}"
    return "\n\n".join([header, *paragraphs])


def _edit(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(2, 5)):
        i = rng.randrange(len(chars))
        op = rng.randrange(3)
        if op == 0:
            del chars[i]
        elif op == 1:
            chars.insert(i, rng.choice("的了和在是也"))
        else:
            chars[i] = rng.choice("电网设备运行")
    return "".join(chars)


def _reorder(rng: random.Random, text: str) -> str:
    paragraphs = text.split("\n\n")
    rng.shuffle(paragraphs)
    return "\n\n".join(paragraphs)


def _boilerplate(rng: random.Random, text: str) -> str:
    lines = [line.format(n=rng.randint(10, 9999)) for line in rng.sample(BOILERPLATE, 2)]
    return f"{lines[0]}\n{text}\n{lines[1]}"


@cache
def _s2t():
    import opencc

    return opencc.OpenCC("s2t")


def _traditional(rng: random.Random, text: str) -> str:
    return _s2t().convert(text)


def _dates(rng: random.Random, text: str) -> str:
    import re

    return re.sub(r"\d{4}年\d{1,2}月\d{1,2}日", lambda _: _date(rng), text)


VARIANTS = {"edit": _edit, "reorder": _reorder, "boilerplate": _boilerplate, "traditional": _traditional,
            "dates": _dates}


def make_corpus(n_base: int, seed: int = 0) -> tuple[list[Document], list[set[str]]]:
    """(documents in a shuffled order, true clusters of ids with >= 2 members)."""
    rng = random.Random(seed)
    docs: list[Document] = []
    clusters: list[set[str]] = []
    for b in range(n_base):
        text = base_document(rng)
        docs.append(Document(f"b{b}", text, f"base/{b}.txt"))
        if rng.random() < 0.5:  # half the base documents get 1-2 planted copies
            members = {f"b{b}"}
            for v in range(rng.randint(1, 2)):
                kinds = rng.sample(sorted(VARIANTS), rng.randint(1, 2))
                copy = text
                for kind in kinds:
                    copy = VARIANTS[kind](rng, copy)
                doc_id = f"b{b}v{v}-{'+'.join(kinds)}"
                docs.append(Document(doc_id, copy, f"copies/{doc_id}.txt"))
                members.add(doc_id)
            clusters.append(members)
    rng.shuffle(docs)
    return docs, clusters


def _pairs(clusters: list[set[str]]) -> set[frozenset[str]]:
    return {frozenset(pair) for cluster in clusters for pair in itertools.combinations(sorted(cluster), 2)}


def evaluate(n_base: int = 400, seed: int = 0, threshold: float = 0.7) -> dict[str, float]:
    docs, true_clusters = make_corpus(n_base, seed)
    dedup = NearDedup(threshold=threshold)
    start = time.perf_counter()
    list(dedup(LanguageTagger()(Normalizer()(docs))))
    seconds = time.perf_counter() - start
    found_clusters = [{c.kept_id, *(d["id"] for d in c.dropped)} for c in dedup.clusters.values()]
    truth, found = _pairs(true_clusters), _pairs(found_clusters)
    hits = len(truth & found)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth) if truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"docs": len(docs), "true_pairs": len(truth), "found_pairs": len(found), "precision": precision,
            "recall": recall, "f1": f1, "seconds": seconds, "missed": sorted(map(sorted, truth - found))[:5]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=400, help="base documents (about 1.4x as many in total)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threshold", type=float, default=0.7)
    args = parser.parse_args()
    r = evaluate(args.docs, args.seed, args.threshold)
    print(f"documents {r['docs']}, true duplicate pairs {r['true_pairs']}, found pairs {r['found_pairs']}")
    print(f"precision {r['precision']:.3f}  recall {r['recall']:.3f}  F1 {r['f1']:.3f}  "
          f"(normalize + lang + MinHash LSH: {r['seconds']:.1f} s)")
    if r["missed"]:
        print("some missed pairs:", r["missed"])
    print("goal: F1 >= 0.95")


if __name__ == "__main__":
    main()
