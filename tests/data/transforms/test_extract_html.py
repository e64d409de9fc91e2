from wattlm.data.document import Document
from wattlm.data.transforms.extract_html import HtmlExtractor, extract_main_text

from ..helpers import ARTICLE_PARAGRAPHS, COMMENT_TEXT, FOOTER_TEXT, NAV_TEXT, article_html, nav_only_html


def test_boilerplate_removed_article_kept():
    text = extract_main_text(article_html())
    assert text is not None
    for paragraph in ARTICLE_PARAGRAPHS:
        assert paragraph in text
    for word in NAV_TEXT.split():
        assert word not in text
    assert FOOTER_TEXT not in text
    assert COMMENT_TEXT not in text


def test_extractor_step_drops_pages_without_main_text_and_passes_others():
    docs = [
        Document("1", article_html(), "a.html", {"format": "html"}),
        Document("2", nav_only_html(), "b.html", {"format": "html"}),
        Document("3", "<p>not html: a text file that mentions tags</p>", "c.txt", {"format": "text"}),
    ]
    step = HtmlExtractor()
    out = list(step(docs))
    assert [d.id for d in out] == ["1", "3"]
    assert ARTICLE_PARAGRAPHS[0] in out[0].text
    assert "<p>" not in out[0].text
    assert out[1].text == "<p>not html: a text file that mentions tags</p>"
    assert step.dropped == {"no_main_text": 1}
