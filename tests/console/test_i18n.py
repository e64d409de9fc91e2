"""Labels: both languages required, unknown keys shown as themselves, script labels by prefix."""

from __future__ import annotations

import pytest

from wattlm.console import i18n


def test_a_label_needs_both_languages():
    with pytest.raises(ValueError, match="lacks zh"):
        i18n.register({"test.half": {"en": "Half"}})


def test_translate_and_fallbacks():
    i18n.register({"test.pair": {"en": "Pair", "zh": "一对"}})
    assert i18n.translate("test.pair", "zh") == "一对"
    assert i18n.translate("test.pair", "en") == "Pair"
    assert i18n.translate("test.missing-key", "zh") == "test.missing-key"
    assert i18n.language_of("fr") == "en" and i18n.language_of("zh") == "zh" and i18n.language_of(None) == "en"


def test_script_labels_are_picked_by_prefix():
    i18n.register({"js.test.a": {"en": "A", "zh": "甲"}})
    labels = i18n.labels_for("zh", "js.")
    assert labels["js.test.a"] == "甲" and all(key.startswith("js.") for key in labels)
