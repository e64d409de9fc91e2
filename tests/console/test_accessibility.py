"""Accessibility checks on every page's HTML: each control has a label, buttons and links have names,
one h1, a language attribute and a skip link; and the stylesheet's text colours reach 4.5:1 contrast."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .test_pages import _id_of

STYLESHEET = Path(__file__).resolve().parents[2] / "src" / "wattlm" / "console" / "static" / "console.css"


class Controls(HTMLParser):
    """Collects form controls, labels, buttons and headings of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[dict] = []
        self.label_for: set[str] = set()
        self.ids: set[str] = set()
        self.buttons: list[dict] = []
        self.h1 = 0
        self.html_lang = None
        self._button: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "html":
            self.html_lang = attrs.get("lang")
        if tag == "h1":
            self.h1 += 1
        if tag == "label" and attrs.get("for"):
            self.label_for.add(attrs["for"])
        if tag in ("input", "select", "textarea") and attrs.get("type") != "hidden":
            self.controls.append(attrs | {"tag": tag})
        if tag == "button":
            self._button = attrs | {"text": ""}
            self.buttons.append(self._button)

    def handle_endtag(self, tag):
        if tag == "button":
            self._button = None

    def handle_data(self, data):
        if self._button is not None:
            self._button["text"] += data.strip()


def pages(client) -> list[str]:
    task, corpus, kb = _id_of(client, "grid-task"), _id_of(client, "grid-corpus"), _id_of(client, "grid-docs")
    return ["/", f"/models/{task}", f"/datasets/{corpus}", f"/datasets/{corpus}?show=dropped", "/eval",
            f"/eval?model={task}&model={_id_of(client, 'grid-industry')}", "/playground", "/kb", f"/kb/{kb}", "/keys",
            "/login"]


def test_every_control_is_labelled_and_every_button_named(client):
    for path in pages(client):
        response = client.get(path)
        assert response.status_code == 200, path
        page = Controls()
        page.feed(response.text)
        assert page.html_lang in ("en", "zh-CN"), path
        assert page.h1 == 1, f"{path}: {page.h1} h1 headings"
        assert "main" in page.ids and 'class="skip" href="#main"' in response.text, path
        for control in page.controls:
            named = (control.get("id") in page.label_for or control.get("aria-label")
                     or control.get("aria-labelledby"))
            assert named, f"{path}: unlabelled {control['tag']} {control}"
            if control.get("aria-labelledby"):
                assert control["aria-labelledby"] in page.ids, path
        for button in page.buttons:
            assert button["text"] or button.get("aria-label"), f"{path}: a button without a name"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    high, low = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_of_text_colours_is_readable():
    css = STYLESHEET.read_text()
    colours = dict(re.findall(r"--([a-z]+):\s*(#[0-9a-f]{6})", css))
    white = "#ffffff"
    pairs = [("ink", "bg"), ("muted", "bg"), ("accent", "bg"), ("bad", "bg"), ("good", "bg"), ("ink", "panel"),
             ("muted", "panel"), ("accent", "panel"), ("ink", "mark")]
    for fg, bg in pairs:
        assert contrast(colours[fg], colours[bg]) >= 4.5, (fg, bg)
    assert contrast(white, colours["accent"]) >= 4.5  # header text and buttons
    assert contrast(white, colours["disabled"]) >= 4.5  # disabled buttons


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_label_has_both_languages(lang):
    from wattlm.console import i18n
    from wattlm.console.app import PAGE_ROUTERS  # noqa: F401  (imports every page module's labels)

    missing = [key for key, texts in i18n._LABELS.items() if not texts.get(lang)]
    assert not missing
