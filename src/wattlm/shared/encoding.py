"""Turn a file's bytes into text, or say in one line why that is impossible.

Order: BOM, then strict UTF-8, then the two Chinese legacy encodings (GB18030, a superset of GBK/GB2312,
and Big5), then charset-normalizer for everything else. The Chinese encodings are tried by hand because
charset-normalizer guesses from statistics that need more text than a short note has: a 20-character
GBK sentence comes back as cp949 (Korean). GBK and Big5 both decode most double-byte input, so each
decoding is scored by how many of its characters are *common* characters of that encoding's own
standard (the 6,763 hanzi of GB2312; the 5,401 "frequent" hanzi of Big5). Real text scores near 1.0;
the wrong codec's output scores near 0.5 because it lands on rare characters, kana and symbols.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from functools import cache

# Below this share of common characters a Chinese decoding is treated as a wrong guess.
MIN_CHINESE_SCORE = 0.8
# Above this share of control characters decoded "text" is really binary data.
MAX_CONTROL_SHARE = 0.01

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: its BOM starts with the UTF-16 LE BOM
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CHINESE_CODECS = ("gb18030", "big5", "cp950")
# Category Cc (fixed by Unicode's stability policy: U+0000-001F and U+007F-009F) minus \t \n \v \f \r.
# A regex scan, not unicodedata.category per character: that loop was 7 % of the data stage's time.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")


class UndecodableError(ValueError):
    """The bytes are not text in any encoding we can identify (message is one line)."""


def decode_bytes(data: bytes) -> tuple[str, str]:
    """Return (text, encoding name). Raises UndecodableError for empty or binary input."""
    if not data:
        raise UndecodableError("empty file")
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return _checked(data.decode(name), name), name.removesuffix("-sig")
            except UnicodeDecodeError as err:
                raise UndecodableError(f"invalid {name} after byte-order mark: {err.reason}") from None
    if b"\x00" in data:
        raise UndecodableError("binary file (contains NUL bytes)")
    try:
        return _checked(data.decode("utf-8"), "utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    chinese = _best_chinese(data)
    if chinese is not None:
        return chinese
    return _detect(data)


def _best_chinese(data: bytes) -> tuple[str, str] | None:
    best: tuple[float, str, str] | None = None
    for name in _CHINESE_CODECS:
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        score = _common_share(text, _common_hanzi("big5" if name == "cp950" else name))
        if score >= MIN_CHINESE_SCORE and (best is None or score > best[0]):
            best = (score, text, name)
    if best is None:
        return None
    _, text, name = best
    return _checked(text, name), ("big5" if name == "cp950" else name)


def _detect(data: bytes) -> tuple[str, str]:
    # Imported here: only files that are neither UTF-8 nor Chinese pay for it.
    from charset_normalizer import from_bytes

    match = from_bytes(data).best()
    if match is None:
        raise UndecodableError("binary or unknown encoding (no text encoding fits)")
    return _checked(str(match), match.encoding), match.encoding


def _checked(text: str, encoding: str) -> str:
    controls = len(_CONTROLS.findall(text))
    if controls > MAX_CONTROL_SHARE * len(text):
        raise UndecodableError(f"binary file ({controls} control characters when read as {encoding})")
    return text


def _common_share(text: str, common: frozenset[str]) -> float:
    """Share of non-ASCII, non-punctuation characters that are common hanzi (1.0 if there are none)."""
    considered = [ch for ch in text if ord(ch) > 0x7F and not unicodedata.category(ch).startswith(("P", "Z"))]
    if not considered:
        return 1.0
    return sum(ch in common for ch in considered) / len(considered)


@cache
def _common_hanzi(codec: str) -> frozenset[str]:
    """The common hanzi of a codec's standard, read off its byte table (no word list to ship)."""
    if codec == "gb18030":  # GB2312 hanzi: lead bytes 0xB0-0xF7, trail 0xA1-0xFE
        leads, trails, codec_name = range(0xB0, 0xF8), range(0xA1, 0xFF), "gb2312"
    else:  # Big5 frequent hanzi: 0xA440-0xC67E
        leads, trails, codec_name = range(0xA4, 0xC7), [*range(0x40, 0x7F), *range(0xA1, 0xFF)], "big5"
    chars = set()
    for lead in leads:
        for trail in trails:
            if codec_name == "big5" and (lead, trail) > (0xC6, 0x7E):
                break
            try:
                chars.add(bytes((lead, trail)).decode(codec_name))
            except UnicodeDecodeError:
                continue
    return frozenset(chars)
