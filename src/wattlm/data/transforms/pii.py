"""PII scrubbing: identifiers that name a person are replaced by typed placeholders and counted.

Precision matters as much as recall here: a technical corpus is full of numbers (dates like 20240315,
amounts, equipment codes, clause numbers, timestamps), and replacing them with <PII_PHONE> would teach
the model nonsense. So every number-shaped identifier must pass a structural check, not just a regex:
ID numbers their GB 11643 check digit and a real birth date, bank cards the Luhn check and an issuer
prefix, phones a real mobile prefix or area code. Candidates are glued to neither letters nor digits,
so codes like SN13812345678 or GIS-2024-0315-001 never match.
"""

from __future__ import annotations

import datetime
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from wattlm.data.base import Step
from wattlm.data.document import Document

# Count key -> placeholder. Mobile and landline share one placeholder (the model needs no more), but
# are counted apart so the report shows which detector fired.
PLACEHOLDERS = {
    "email": "<PII_EMAIL>",
    "ip": "<PII_IP>",
    "id": "<PII_ID>",
    "bankcard": "<PII_BANKCARD>",
    "mobile": "<PII_PHONE>",
    "landline": "<PII_PHONE>",
}

# Not glued to a code: no letter/digit before, nor a letter/digit joined by - _ / . (e.g. "X-1380...").
_LEFT = r"(?<![0-9A-Za-z])(?<![0-9A-Za-z][-_/.])"
# Not continued by a letter/digit, nor by a decimal or thousands part (amounts: 13800001234.50).
_RIGHT = r"(?![0-9A-Za-z])(?![.,，][0-9])"

_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![A-Za-z0-9.]){_OCTET}(?:\.{_OCTET}){{3}}(?![A-Za-z0-9]|\.\d)")
_ID18 = re.compile(_LEFT + r"\d{17}[\dXx]" + _RIGHT)
# 16-19 digits, run together or in groups of four (6222 0212 3456 7890).
_CARD = re.compile(_LEFT + r"(?:\d{16,19}|\d{4}(?:[ -]\d{4}){3}(?:[ -]?\d{1,3})?)" + _RIGHT)
# Mainland mobile: 1[3-9]x + 8 digits, optional +86/0086, optional 3-4-4 grouping.
_MOBILE = re.compile(_LEFT + r"(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}" + _RIGHT)
# Mainland landline: area code 010/02x (3 digits) or 0[3-9]xx (4 digits), a separator, a local
# number of 7-8 digits that never starts with 0 or 1, optional extension. The separator is required:
# an unseparated 0-leading 11-12 digit run is more often a serial number than a phone.
_LANDLINE = re.compile(
    _LEFT + r"(?:(?:\+86[ -]?)?(?:0(?:10|2\d|[3-9]\d\d))[- ]|[(（]0(?:10|2\d|[3-9]\d\d)[)）] ?)[2-9]\d{2,3}[- ]?\d{4}"
    r"(?:(?:-|转|ext\.? ?)\d{1,5})?" + _RIGHT
)
# Taiwan / Hong Kong style numbers that appear in traditional-Chinese notices: (02)2555-0123, 0912-000-456.
_TW_LANDLINE = re.compile(_LEFT + r"[(（]0\d[)）] ?\d{3,4}-\d{4}" + _RIGHT)
_TW_MOBILE = re.compile(_LEFT + r"09\d{2}-\d{3}-\d{3}" + _RIGHT)

# An 18-digit number right after these words is an ID number even when its check digit is wrong (a
# typo in a real ID is still a real person's ID).
_ID_CONTEXT = re.compile(r"(身份证|证件|公民身份|ID ?(?:No|number|card)|identity)[^0-9\n]{0,8}$", re.IGNORECASE)
_CARD_CONTEXT = re.compile(r"(卡|账号|帐号|账户|card|account|a/c)[^0-9\n]{0,8}$", re.IGNORECASE)
# Four dotted numbers after these words are a version, not an address.
_VERSION_CONTEXT = re.compile(r"(版本|固件|软件|(?<![A-Za-z])(?:ver|version|v|build)|第)[^0-9\n]{0,6}$", re.IGNORECASE)

# GB 11643-1999 "Citizen identification number", clause 7: the check character is
# (12 - sum(a_i * W_i) mod 11) mod 11 with weights W_i = 2^(17-i) mod 11, and the value 10 written X.
_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))  # 7, 9, 10, 5, 8, 4, 2, 1, 6, 3, ...
_ID_CHECK = "10X98765432"  # indexed by sum mod 11 (equivalent to the formula above)


def id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of an ID number."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=False)) % 11]


def valid_birth_date(digits: str) -> bool:
    """Positions 7-14 of an ID number are the birth date YYYYMMDD (GB 11643 clause 5)."""
    try:
        born = datetime.date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
    except ValueError:
        return False
    return 1900 <= born.year <= datetime.date.today().year


def valid_id_number(number: str) -> bool:
    """18 characters, a plausible birth date and a correct GB 11643 check character."""
    number = number.upper()
    return (
        len(number) == 18 and number[:17].isdigit() and valid_birth_date(number)
        and id_check_char(number[:17]) == number[17]
    )


def luhn_valid(digits: str) -> bool:
    """ISO/IEC 7812 Luhn check: doubling every second digit from the right, the sum ends in 0."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def valid_bank_card(number: str) -> bool:
    """Luhn plus an issuer prefix used by cards in China (UnionPay 62, 9xxxx domestic, Visa 4, MC 2/5,
    JCB/Amex 3); numbers starting with 1, 7, 8 or 0 are order and contract numbers, not cards. An
    18-digit number shaped like an ID (birth date inside) is an ID candidate, never a card."""
    digits = re.sub(r"[ -]", "", number)
    if not 16 <= len(digits) <= 19 or digits[0] not in "345629":
        return False
    if digits[0] == "2" and not "2221" <= digits[:4] <= "2720":  # Mastercard 2-series only; not dates
        return False
    if len(digits) == 18 and valid_birth_date(digits):
        return False
    return luhn_valid(digits)


@dataclass(frozen=True)
class _Detector:
    kind: str
    pattern: re.Pattern[str]
    accept: Callable[[str, str, int], bool]  # (match text, whole text, match start) -> is PII


def _always(match: str, text: str, start: int) -> bool:
    return True


def _id_accept(match: str, text: str, start: int) -> bool:
    return valid_id_number(match) or bool(_ID_CONTEXT.search(text[max(0, start - 16) : start]))


def _ip_accept(match: str, text: str, start: int) -> bool:
    if _VERSION_CONTEXT.search(text[max(0, start - 12) : start]):
        return False
    # Clause numbers (3.2.1.4) look like addresses; a real one has an octet of two digits or more.
    return any(len(octet) > 1 for octet in match.split(".")) and not match.startswith("0")


def _card_accept(match: str, text: str, start: int) -> bool:
    # Luhn passes one random number in ten, and long order / ticket numbers are common, so a run of
    # digits is a card only with a second signal: the UnionPay prefix 62, card-style grouping in
    # fours, or a word such as 卡号 / 账号 / card just before it.
    if not valid_bank_card(match):
        return False
    return match.startswith("62") or not match.isdigit() or bool(_CARD_CONTEXT.search(text[max(0, start - 16) : start]))


# Order is priority: a span claimed by an earlier detector is not looked at again (the digits inside
# an e-mail are not a phone; a valid ID is not a card).
DETECTORS = (
    _Detector("email", _EMAIL, _always),
    _Detector("ip", _IPV4, _ip_accept),
    _Detector("id", _ID18, _id_accept),
    _Detector("bankcard", _CARD, _card_accept),
    _Detector("mobile", _MOBILE, _always),
    _Detector("landline", _LANDLINE, _always),
    _Detector("landline", _TW_LANDLINE, _always),
    _Detector("mobile", _TW_MOBILE, _always),
)


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) spans of PII in `text`, sorted by start."""
    spans: list[tuple[int, int, str]] = []
    for detector in DETECTORS:
        for match in detector.pattern.finditer(text):
            start, end = match.span()
            if any(start < s_end and s_start < end for s_start, s_end, _ in spans):
                continue
            if detector.accept(match.group(), text, start):
                spans.append((start, end, detector.kind))
    return sorted(spans)


def scrub_pii(text: str) -> tuple[str, Counter[str]]:
    """`text` with every PII span replaced by its placeholder, and the counts by kind."""
    counts: Counter[str] = Counter()
    pieces: list[str] = []
    position = 0
    for start, end, kind in find_pii(text):
        pieces.append(text[position:start])
        pieces.append(PLACEHOLDERS[kind])
        counts[kind] += 1
        position = end
    pieces.append(text[position:])
    return "".join(pieces), counts


class PiiScrubber(Step):
    """Replaces PII with placeholders; never drops a document. `counts` feeds the report's `pii`."""

    name = "scrub_pii"
    phase = "clean"

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.docs_changed = 0

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            doc.text, counts = scrub_pii(doc.text)
            if counts:
                self.counts.update(counts)
                self.docs_changed += 1
            yield doc

    def report_extras(self) -> dict[str, object]:
        return {"pii": dict(sorted(self.counts.items()))}

    def extra_state(self) -> dict[str, object]:
        return {"counts": dict(self.counts), "docs_changed": self.docs_changed}

    def merge_extra(self, extra: dict) -> None:
        self.counts.update(extra["counts"])
        self.docs_changed += extra["docs_changed"]
