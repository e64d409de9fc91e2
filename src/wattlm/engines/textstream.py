"""Token ids -> streamed text chunks: the one loop every engine runs over what its model samples.

An engine hands `stream_text` the sampled token ids as they come (an iterator that blocks on the
model) and gets `GenerationChunk`s back: incremental detokenisation (a token may end inside a
multi-byte character), stop strings (`StopMatcher`: nothing of a stop is ever sent), end-of-generation
tokens (they end the answer and are not counted), `max_tokens`, exact counts, and the finish reason on
the last chunk only. How ids become text differs by backend, so it is a small strategy object:

- `ByteDecoder`: llama.cpp gives each token's bytes; an incremental UTF-8 decoder holds a partial
  character until its remaining bytes arrive.
- `WholeTextDecoder`: Hugging Face tokenizers only decode whole sequences correctly (SentencePiece
  spaces, byte fallback), so the answer so far is decoded at each token and the new suffix sent; a
  trailing U+FFFD is a character still missing bytes, held back until the next token.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable, Iterator, Sequence

from wattlm.engines.params import FinishReason, GenerationChunk
from wattlm.engines.stops import StopMatcher


class ByteDecoder:
    """Text from per-token bytes (`piece(token)`), with multi-byte characters held until whole."""

    def __init__(self, piece: Callable[[int], bytes]) -> None:
        self._piece = piece
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        return self._decoder.decode(self._piece(token))

    def finish(self) -> str:
        return self._decoder.decode(b"", final=True)


class WholeTextDecoder:
    """Text from decoding the whole answer (`decode(tokens)`) at each token; sends what is new."""

    def __init__(self, decode: Callable[[Sequence[int]], str]) -> None:
        self._decode = decode
        self._tokens: list[int] = []
        self._sent = ""

    def push(self, token: int) -> str:
        self._tokens.append(token)
        ready = self._decode(self._tokens).rstrip("\ufffd")
        # A decode that rewrote text already sent (it cannot be taken back) sends nothing new.
        if len(ready) > len(self._sent) and ready.startswith(self._sent):
            new, self._sent = ready[len(self._sent):], ready
            return new
        return ""

    def finish(self) -> str:
        decoded = self._decode(self._tokens)
        return decoded[len(self._sent):] if decoded.startswith(self._sent) else ""


def stream_text(
    tokens: Iterable[int],
    decoder: ByteDecoder | WholeTextDecoder,
    stop: Sequence[str],
    prompt_tokens: int,
    max_tokens: int,
    is_end: Callable[[int], bool],
) -> Iterator[GenerationChunk]:
    """Chunks of the text of `tokens` (see the module docstring). `is_end(token)`: it ends the answer."""
    stops = StopMatcher(stop)
    produced = 0
    finish: FinishReason = "length"
    for token in tokens:
        if is_end(token):
            finish = "stop"  # end-of-generation tokens (eos, <|im_end|>, ...) are not counted
            break
        produced += 1
        text = stops.push(decoder.push(token))
        if stops.matched:
            yield GenerationChunk(text, "stop", prompt_tokens, produced)
            return
        if text:
            yield GenerationChunk(text, None, prompt_tokens, produced)
        if produced >= max_tokens:
            break
    tail = stops.push(decoder.finish())
    if stops.matched:
        finish = "stop"
    else:
        tail += stops.flush()
    yield GenerationChunk(tail, finish, prompt_tokens, produced)
