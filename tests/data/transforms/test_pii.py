import pytest

from wattlm.data.document import Document
from wattlm.data.transforms.pii import (
    PiiScrubber,
    find_pii,
    id_check_char,
    luhn_valid,
    scrub_pii,
    valid_bank_card,
    valid_id_number,
)

from ..helpers import load_bench


def test_id_check_digit_follows_gb_11643():
    # The worked example of GB 11643-1999 (a Beijing number of 1949-12-31) ends in X.
    assert id_check_char("11010519491231002") == "X"
    assert valid_id_number("11010519491231002X") and valid_id_number("11010519491231002x")
    assert not valid_id_number("110105194912310021")  # wrong check character
    assert not valid_id_number("110105194913310028")  # month 13 is no birth date


def test_luhn_and_card_prefixes():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert valid_bank_card("6222 0212 3456 7890 128") is luhn_valid("6222021234567890128")
    assert not valid_bank_card("1234567812345670")  # passes Luhn, but no card issuer starts with 1


@pytest.mark.parametrize(("text", "expected"), [
    ("客户电话13700009876，请回电。", "客户电话<PII_PHONE>，请回电。"),
    ("call +86 138 1234 5678 now", "call <PII_PHONE> now"),
    ("值班电话：0599-86660123；", "值班电话：<PII_PHONE>；"),
    ("座机(010)62345678转123", "座机<PII_PHONE>"),
    ("身份证号11010519491231002X。", "身份证号<PII_ID>。"),
    # A wrong check digit still counts right after the word 身份证: a mistyped ID is still personal.
    ("身份证号990103197911150026（核验）", "身份证号<PII_ID>（核验）"),
    ("卡号6222021234567890128，", "卡号<PII_BANKCARD>，"),
    ("发送邮件至kefu@chengjiang-power.example.cn。", "发送邮件至<PII_EMAIL>。"),
    ("server 192.168.1.10 is down", "server <PII_IP> is down"),
])
def test_scrub_replaces_each_kind(text, expected):
    assert scrub_pii(text)[0] == expected


@pytest.mark.parametrize("text", [
    "停电时间20240315，预计2024-03-15 18:00恢复。",
    "补贴金额13800001234.50元，合计1,380,000元。",
    "设备编号SN13812345678，柜体GIS-2024-0315-001。",
    "软件版本 1.2.3.4，按第3.2.1.4条执行。",
    "时间戳1710489600123，工单号1234567812345670。",
    "资产条码 110105194912310021 已录入。",
])
def test_ordinary_numbers_are_left_alone(text):
    assert find_pii(text) == [] and scrub_pii(text)[0] == text


def test_scrubber_step_counts_by_kind():
    docs = [Document("1", "手机13800001234，邮箱a@example.com", "a.txt"), Document("2", "无个人信息。", "b.txt")]
    step = PiiScrubber()
    out = list(step(docs))
    assert [d.text for d in out] == ["手机<PII_PHONE>，邮箱<PII_EMAIL>", "无个人信息。"]
    assert step.report_extras() == {"pii": {"email": 1, "mobile": 1}}
    assert step.docs_changed == 1 and not step.dropped


def test_bench_small_fixed_seed_meets_goals():
    bench = load_bench("data_pii_bench")
    results = bench.evaluate(n_per_kind=100, n_decoys=1000, seed=7)
    for kind in bench.KINDS:
        assert results[kind]["recall"] >= 0.99, kind
    assert results["decoy:all"]["fp_rate"] <= 0.01
