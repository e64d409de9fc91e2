"""Stop sequences over streamed text, shared by every engine.

A stop string may arrive split across tokens ("\\n\\nUs" + "er:"), so text that could be the start of
one is held back until the next token settles it. Nothing of a stop string is ever sent, and the
streamed pieces always join to exactly the non-streamed answer.
"""

from __future__ import annotations

from collections.abc import Iterable


class StopMatcher:
    """Feed generated text in with `push`; send out what it returns; `flush` at the end."""

    def __init__(self, stops: Iterable[str]) -> None:
        self._stops = [stop for stop in stops if stop]  # "" would match everywhere
        self._text = ""
        self._sent = 0  # self._text[:self._sent] has been handed out
        self.matched = False

    def push(self, new_text: str) -> str:
        """Add generated text; return the part that is now safe to send."""
        if self.matched:
            return ""
        self._text += new_text
        # A stop cannot begin before self._sent: the held-back tail always covers any partial match.
        hits = [at for stop in self._stops if (at := self._text.find(stop, self._sent)) >= 0]
        if hits:
            self.matched = True
            return self._take(min(hits))
        return self._take(len(self._text) - self._partial_stop_length())

    def flush(self) -> str:
        """Generation ended without a stop: the held-back tail is ordinary text after all."""
        return "" if self.matched else self._take(len(self._text))

    def _partial_stop_length(self) -> int:
        """Length of the longest unsent tail of the text that a stop string begins with."""
        unsent = len(self._text) - self._sent
        longest = 0
        for stop in self._stops:
            for length in range(min(len(stop) - 1, unsent), longest, -1):
                if self._text.endswith(stop[:length]):
                    longest = length
                    break
        return longest

    def _take(self, end: int) -> str:
        piece = self._text[self._sent : end]
        self._sent = end
        return piece
