import pytest

from wattlm.shared.encoding import UndecodableError, decode_bytes

GB_TEXT = "电网调度规程：变压器的额定容量为一百兆伏安。"
BIG5_TEXT = "電網調度規程：變壓器的額定容量為一百兆伏安。"


def test_utf8_first():
    assert decode_bytes(GB_TEXT.encode("utf-8")) == (GB_TEXT, "utf-8")


def test_utf8_bom_is_removed():
    text, encoding = decode_bytes(b"\xef\xbb\xbf" + GB_TEXT.encode("utf-8"))
    assert (text, encoding) == (GB_TEXT, "utf-8")


def test_short_gbk_is_not_mistaken_for_korean():
    # charset-normalizer alone calls this sentence cp949; the Chinese scoring must win.
    assert decode_bytes(GB_TEXT.encode("gbk")) == (GB_TEXT, "gb18030")


def test_short_big5():
    assert decode_bytes(BIG5_TEXT.encode("big5")) == (BIG5_TEXT, "big5")


def test_mixed_ascii_and_gbk():
    text = "第3章 110kV变电站运行规程（试行）\nGB/T 14285-2006 继电保护"
    assert decode_bytes(text.encode("gbk"))[0] == text


def test_utf16_with_bom():
    assert decode_bytes("变压器 transformer".encode("utf-16")) == ("变压器 transformer", "utf-16")


def test_latin_text_falls_back_to_detection():
    text, encoding = decode_bytes("Le transformateur a une puissance nominale élevée.".encode("cp1252"))
    assert "transformateur" in text and "puissance nominale" in text
    assert encoding != "utf-8"


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty file"), (b"PK\x03\x04\x00\x00binary", "NUL"), (bytes(range(1, 32)) * 20, "binary")],
)
def test_binary_and_empty_raise(data, message):
    with pytest.raises(UndecodableError, match=message):
        decode_bytes(data)
