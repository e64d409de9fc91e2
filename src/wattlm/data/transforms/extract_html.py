"""HTML main-text extraction with trafilatura: the article stays, navigation, footers and comments go."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from wattlm.data.base import Step
from wattlm.data.document import Document


def extract_main_text(html: str) -> str | None:
    """The main text of a page, or None when trafilatura finds no article in it."""
    # Imported here: trafilatura pulls in lxml and friends, which `watt --help` should not pay for.
    import trafilatura

    # favor_precision: a corpus is hurt more by menu and footer lines repeated on every page than by a
    # lost sidebar paragraph. Tables stay (specifications and ratings live in tables in technical pages).
    return trafilatura.extract(
        html,
        favor_precision=True,
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        deduplicate=False,
    )


class HtmlExtractor(Step):
    """Replaces the raw HTML of HTML documents with their main text; other documents pass through."""

    name = "extract_html"
    phase = "read"
    requires = ("trafilatura",)

    @classmethod
    def preload(cls) -> None:
        import trafilatura  # noqa: F401
        from trafilatura import external

        # justext's stop lists of every language, read on the first page that needs justext (0.8 s a process)
        if external.JT_STOPLIST is None and callable(getattr(external, "jt_stoplist_init", None)):
            external.jt_stoplist_init()

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            if doc.meta.get("format") != "html":
                yield doc
                continue
            text = extract_main_text(doc.text)
            if not text or not text.strip():
                self.drop("no_main_text", doc)
                continue
            doc.text = text
            doc.meta["format"] = "text"
            yield doc
