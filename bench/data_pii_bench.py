"""PII scrubbing quality: planted identifiers (recall per type) and ordinary numbers (false positives).

Every planted identifier is random but valid (ID check digit per GB 11643, Luhn bank cards, real mobile
prefixes and area codes), set inside ordinary Chinese or English sentences. Decoys are the numbers a
power-grid corpus is full of: dates, timestamps, amounts, equipment and serial codes, version and
clause numbers, ID-shaped numbers with a wrong check digit, card-shaped numbers failing Luhn.

    .venv/bin/python bench/data_pii_bench.py            # 300 per type + 3000 decoys, about a second
    .venv/bin/python bench/data_pii_bench.py --n 5000   # bigger run
"""

from __future__ import annotations

import argparse
import random
import string
from collections import Counter
from dataclasses import dataclass

from wattlm.data.transforms.pii import PLACEHOLDERS, find_pii, id_check_char, luhn_valid

KINDS = ("id", "mobile", "landline", "bankcard", "email", "ip")

ZH_TEMPLATES = [
    "如有疑问请联系现场负责人{name}，{label}{value}，我们将在两个工作日内答复。",
    "客户信息：{name}，{label}：{value}（仅用于实名核验）。",
    "本次检修由运维二班负责，{label}为{value}，请各单位知悉。",
    "{name}反映电费异常，留下的{label}是 {value} ，已转营销部处理。",
]
EN_TEMPLATES = [
    "Questions about this bulletin can be directed to {name} at {value} during office hours.",
    "The customer record lists {label} {value}; it must not be copied into the ticket.",
    "Please send the signed work permit to {value} before the outage starts.",
    "For the refund, the customer gave {label} {value} and asked us to call back.",
]
# A bare ID or card number with no word saying what it is does not occur in real text: those kinds
# only use templates with {label}.
NEEDS_LABEL = {"id", "bankcard"}
LABELS = {
    "id": ("身份证号", "ID number"), "mobile": ("手机", "mobile"), "landline": ("座机", "phone"),
    "bankcard": ("银行卡号", "card number"), "email": ("邮箱", "e-mail"), "ip": ("服务器地址", "host"),
}
NAMES = ["王建华", "李敏", "陈丽娟", "赵刚", "周涛", "Mr. Zhang", "the duty manager", "Ms. Liu"]
MOBILE_PREFIXES = ["130", "131", "135", "136", "137", "138", "139", "150", "151", "158", "159", "166",
                   "176", "177", "180", "182", "186", "187", "188", "189", "191", "198", "199"]
AREA_CODES = ["010", "021", "022", "023", "020", "025", "027", "028", "029", "0571", "0755", "0599", "0311", "0851"]


def make_id(rng: random.Random) -> str:
    region = f"{rng.randint(11, 65)}{rng.randint(0, 9999):04d}"
    birth = f"{rng.randint(1940, 2006)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = region + birth + f"{rng.randint(0, 999):03d}"
    return first17 + id_check_char(first17)


def luhn_complete(body: str) -> str:
    return next(body + d for d in string.digits if luhn_valid(body + d))


def make_card(rng: random.Random) -> str:
    prefix = rng.choice(["622202", "621700", "622848", "623668", "4367", "5187", "6259"])
    length = rng.choice([16, 16, 19])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - 1 - len(prefix)))
    number = luhn_complete(body)
    if rng.random() < 0.3:
        number = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


def make_mobile(rng: random.Random) -> str:
    digits = rng.choice(MOBILE_PREFIXES) + "".join(rng.choice(string.digits) for _ in range(8))
    style = rng.randrange(5)
    if style == 1:
        return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"
    if style == 2:
        return f"{digits[:3]} {digits[3:7]} {digits[7:]}"
    if style == 3:
        return f"+86 {digits}"
    return digits


def make_landline(rng: random.Random) -> str:
    area = rng.choice(AREA_CODES)
    local = str(rng.randint(2, 9)) + "".join(rng.choice(string.digits) for _ in range(7 if len(area) == 3 else rng.choice([6, 7])))
    style = rng.randrange(4)
    number = f"({area}){local}" if style == 1 else f"{area}-{local}"
    return number + (f"-{rng.randint(100, 9999)}" if style == 3 else "")


def make_email(rng: random.Random) -> str:
    user = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 9)))
    user += rng.choice(["", ".wang", "_2024", "-duty", str(rng.randint(1, 99))])
    domain = rng.choice(["example.com", "example.cn", "grid-power.example.cn", "mail.example.org", "qq.com"])
    return f"{user}@{domain}"


def make_ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1 if i == 0 else 0, 255)) for i in range(4))


MAKERS = {"id": make_id, "mobile": make_mobile, "landline": make_landline, "bankcard": make_card,
          "email": make_email, "ip": make_ip}


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def make_decoy(rng: random.Random) -> tuple[str, str]:
    """(decoy kind, sentence) holding one ordinary number that must survive scrubbing."""
    year, month, day = rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28)
    bad_id = make_id(rng)
    bad_id = bad_id[:17] + next(c for c in "0123456789X" if c != bad_id[17])
    bad_card = make_card(rng).replace(" ", "")
    bad_card = bad_card[:-1] + str((int(bad_card[-1]) + rng.randint(1, 9)) % 10)
    decoys = {
        "date": f"本次停电时间为{year}{month:02d}{day:02d}，预计{year}-{month:02d}-{day:02d} 18:00 恢复送电。",
        "timestamp": f"告警记录时间戳 {rng.randint(1_500_000_000, 1_750_000_000)}{rng.choice(['', _digits(rng, 3)])}，已同步至主站。",
        "amount": f"本季度累计电费 {rng.randint(1, 99_999):,}.{rng.randint(0, 99):02d} 元，补贴金额{_digits(rng, 11)}.{_digits(rng, 2)}元。",
        "equipment_code": f"更换设备编号 SN{year}{_digits(rng, 7)}，柜体型号 GIS-{year}-{month:02d}{day:02d}-{_digits(rng, 3)}。",
        "serial": f"合同编号 {year}{month:02d}{day:02d}{_digits(rng, rng.randint(6, 11))}，工单号 {rng.randint(1, 9)}{_digits(rng, rng.randint(15, 18))}。",
        "version": f"保护装置软件版本 {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 300)}，V{rng.randint(1, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 9)} 已发布。",
        "clause": f"按照 GB 50150 第{rng.randint(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}条执行。",
        "invalid_id": f"资产条码 {bad_id} 已录入台账。",
        "non_luhn_card": f"流水号 {bad_card} 已归档。",
        "measurement": f"测得接地电阻 0.{_digits(rng, 2)} 欧，负荷 {rng.randint(100, 9999)} 万千瓦，110kV 母线电压 {rng.randint(100, 130)}.{_digits(rng, 1)} kV。",
        "postcode": f"通信地址邮编 {rng.randint(100000, 850000)}，传真分机 {_digits(rng, 4)}。",
    }
    kind = rng.choice(sorted(decoys))
    return kind, decoys[kind]


@dataclass
class Planted:
    kind: str
    value: str
    sentence: str


def make_planted(rng: random.Random, kind: str) -> Planted:
    value = MAKERS[kind](rng)
    english = rng.random() < 0.3
    templates = EN_TEMPLATES if english else ZH_TEMPLATES
    if kind in NEEDS_LABEL:
        templates = [t for t in templates if "{label}" in t]
    template = rng.choice(templates)
    label = LABELS[kind][1 if english else 0]
    return Planted(kind, value, template.format(name=rng.choice(NAMES), label=label, value=value))


def evaluate(n_per_kind: int = 300, n_decoys: int = 3000, seed: int = 0) -> dict[str, dict[str, float]]:
    """Recall per kind (planted value found with the right placeholder) and false positives per decoy kind."""
    rng = random.Random(seed)
    results: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        found = 0
        for _ in range(n_per_kind):
            planted = make_planted(rng, kind)
            start = planted.sentence.index(planted.value)
            end = start + len(planted.value)
            spans = find_pii(planted.sentence)
            # Right placeholder (mobile and landline share <PII_PHONE>), covering exactly the value.
            found += any(s == start and e == end and PLACEHOLDERS[k] == PLACEHOLDERS[kind] for s, e, k in spans)
        results[kind] = {"recall": found / n_per_kind, "n": n_per_kind}
    fp: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for _ in range(n_decoys):
        kind, sentence = make_decoy(rng)
        seen[kind] += 1
        fp[kind] += bool(find_pii(sentence))
    for kind in sorted(seen):
        results[f"decoy:{kind}"] = {"fp_rate": fp[kind] / seen[kind], "n": seen[kind]}
    results["decoy:all"] = {"fp_rate": sum(fp.values()) / n_decoys, "n": n_decoys}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="planted identifiers per type (decoys: 10x)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = evaluate(args.n, args.n * 10, args.seed)
    print(f"{'case':<24}{'n':>7}  {'recall':>8}  {'false pos.':>10}")
    for case, row in results.items():
        recall = f"{row['recall']:.2%}" if "recall" in row else ""
        fp_rate = f"{row['fp_rate']:.2%}" if "fp_rate" in row else ""
        print(f"{case:<24}{row['n']:>7}  {recall:>8}  {fp_rate:>10}")
    print("goal: recall >= 99% per type, false positives <= 1% on decoys")


if __name__ == "__main__":
    main()
