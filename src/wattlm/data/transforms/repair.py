"""Repairs of common Chinese web debris, applied by the normalizer: mojibake, pinyin glued to
characters, runs of repeated punctuation. Each repair only fires on a shape that ordinary text does
not have, so clean text passes through unchanged.
"""

from __future__ import annotations

import re
from functools import cache

# Characters that UTF-8 bytes turn into when decoded as Latin-1 or Windows-1252: 0x80-0xFF, plus the
# 27 printable characters cp1252 puts at 0x80-0x9F. CJK in UTF-8 is three bytes >= 0x80, so a
# misdecoded Chinese passage is a run of these.
_CP1252_SPECIALS = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
_MOJIBAKE_RUN = re.compile(f"[\u0080-\u00ff{_CP1252_SPECIALS}]{{3,}}")
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")

# A hanzi followed by its romanisation in brackets: 发(fā), 电（diàn）, 压(ya1). Only syllables with a
# tone mark or tone number qualify, so 交流电(AC) or 功率(kW) are left alone.
_TONE_VOWELS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜ"
_PINYIN = re.compile(
    rf"([\u4e00-\u9fff])\s?[(（]\s?((?=[a-zü{_TONE_VOWELS}]*[{_TONE_VOWELS}])[a-zü{_TONE_VOWELS}]{{1,6}}"
    rf"|[a-zü]{{1,6}}[1-5])\s?[)）]"
)
# Two or more of the same sentence mark: ！！！ -> ！, 。。。 -> 。. The ellipsis …… and the dash ——
# are single punctuation marks written with two characters, and '...' is an English ellipsis: kept.
_REPEATED_MARKS = re.compile(r"([！？。，、；：!?,;])\1+")


@cache
def _cp1252_byte() -> dict[str, int]:
    return {ch: ch.encode("cp1252")[0] for ch in _CP1252_SPECIALS}


def _undo_run(run: str) -> str:
    table = _cp1252_byte()
    try:
        raw = bytes(table[ch] if ch in table else ord(ch) for ch in run)
        fixed = raw.decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        return run
    # Accept only a repair that produces Chinese: 'Ã©' -> 'é' could be a legitimate French word.
    return fixed if _CJK.search(fixed) else run


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 read as Latin-1/cp1252 ('å\\x8f\\x98ç\\x94µ' -> '变电'), run by run."""
    return _MOJIBAKE_RUN.sub(lambda match: _undo_run(match.group()), text)


def strip_pinyin(text: str) -> str:
    """发(fā)电（diàn） -> 发电."""
    return _PINYIN.sub(r"\1", text)


def collapse_repeated_punctuation(text: str) -> str:
    return _REPEATED_MARKS.sub(r"\1", text)
