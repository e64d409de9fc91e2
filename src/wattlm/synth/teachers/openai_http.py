"""A teacher behind any OpenAI-compatible endpoint: a company's large model, or our own `watt serve`.

Requests go out concurrently (at most `concurrency` in flight), so a batching server such as ours
decodes several at once. 5xx, 429, 408, timeouts and dropped connections are retried with exponential
backoff (a Retry-After header, if sent, is honoured up to 10 s); every other problem costs only that
prompt and is counted by reason. With style "auto" the teacher starts with chat and switches to plain
completions when the server says the model has no chat template (a base model behind `watt serve`).

The endpoint is not trusted to behave: a reply body is read in chunks and dropped past
`max_reply_bytes` (`reply_too_large`); `timeout` is a deadline for the whole request, so a server that
trickles one byte a second cannot hold a slot forever (`deadline_exceeded`, retried like a timeout); a
body that is not JSON, not UTF-8 or nested deeper than Python's recursion limit is `unparseable_reply`.
An API key sent over plain http to a host that is not loopback is warned about once.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import warnings
from collections.abc import Sequence
from urllib.parse import urlsplit

from wattlm.synth.teachers.base import TeacherBase, TeacherPrompt

API_KEY_ENV = "WATT_TEACHER_API_KEY"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 10.0
MAX_REPLY_BYTES = 2**20  # a chat completion of a few thousand tokens is tens of KB
_warned_plain_http: set[str] = set()


class ReplyTooLarge(Exception):
    """The endpoint sent more than `max_reply_bytes`."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def warn_plain_http_key(base_url: str) -> None:
    """Once per endpoint: a bearer key over http can be read by anyone on the path."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or is_loopback(parts.hostname or "") or base_url in _warned_plain_http:
        return
    _warned_plain_http.add(base_url)
    warnings.warn(f"the teacher API key is sent over plain http to {parts.hostname}: use https "
                  "(or a loopback tunnel) so it cannot be read on the way", stacklevel=3)


def api_base(url: str) -> str:
    """`http://host:port` means the usual `/v1` root; a URL with a path is used as given."""
    url = url.rstrip("/")
    return url + "/v1" if urlsplit(url).path in ("", "/") else url


class OpenAITeacher(TeacherBase):
    def __init__(self, base_url: str, model: str, style: str = "auto", concurrency: int = 4,
                 timeout: float = 120.0, retries: int = 3, backoff: float = 0.5, api_key: str | None = None,
                 registry_id: str | None = None, max_reply_bytes: int = MAX_REPLY_BYTES) -> None:
        """`timeout`: seconds for one whole request (connect, send, every byte of the reply)."""
        super().__init__()
        self.base_url, self.model = api_base(base_url), model
        self.auto = style == "auto"
        self.style = "chat" if self.auto else style
        self.concurrency, self.timeout, self.retries, self.backoff = concurrency, timeout, retries, backoff
        self.max_reply_bytes = max_reply_bytes
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._registry_id = registry_id
        if self.api_key:
            warn_plain_http_key(self.base_url)

    @property
    def name(self) -> str:
        return self.model

    @property
    def registry_id(self) -> str | None:
        return self._registry_id

    def describe(self) -> dict:
        return {"type": "openai", "base_url": self.base_url, "model": self.model}

    def close(self) -> None:
        pass  # each `complete` call owns its HTTP client

    def prepare(self) -> None:
        """Settle "auto" before planning: one 1-token chat request tells whether the model can chat.

        Anything but the server's "no chat template" answer keeps chat (a flaky endpoint is dealt with
        by the real requests' retries)."""
        if not self.auto or self.style != "chat":
            return
        body = {"model": self.model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
        reply = asyncio.run(self._probe(body))
        if reply is not None and reply[0] == 400 and b"chat template" in reply[1].lower():
            self.style = "completion"

    async def _probe(self, body: dict) -> tuple[int, bytes, str | None] | None:
        import httpx

        async with self._client(1) as client:
            try:
                return await asyncio.wait_for(self._post(client, "/chat/completions", body), self.timeout)
            except (httpx.HTTPError, ReplyTooLarge, TimeoutError):
                return None

    def _client(self, concurrency: int):
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        return httpx.AsyncClient(headers=headers, timeout=self.timeout, limits=limits)

    async def _post(self, client, path: str, body: dict) -> tuple[int, bytes, str | None]:
        """Status, body (read in chunks) and any Retry-After header. ReplyTooLarge as soon as the body
        passes the cap: the connection is closed, the rest never read. Bytes are counted after content
        decoding, so a gzip bomb stops one decoded network chunk past the cap."""
        async with client.stream("POST", self.base_url + path, json=body) as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_reply_bytes:
                    raise ReplyTooLarge
                chunks.append(chunk)
            return response.status_code, b"".join(chunks), response.headers.get("retry-after")

    def complete(self, prompts: Sequence[TeacherPrompt]) -> list[str | None]:
        self.requests += len(prompts)
        replies = asyncio.run(self._complete_all(prompts))
        self.replies += sum(reply is not None for reply in replies)
        return replies

    async def _complete_all(self, prompts: Sequence[TeacherPrompt]) -> list[str | None]:
        gate = asyncio.Semaphore(self.concurrency)
        async with self._client(self.concurrency) as client:

            async def one(prompt: TeacherPrompt) -> str | None:
                async with gate:
                    return await self._complete_one(client, prompt)

            return list(await asyncio.gather(*(one(p) for p in prompts)))

    def _body(self, prompt: TeacherPrompt) -> tuple[str, dict]:
        body: dict = {"model": self.model, "max_tokens": prompt.max_tokens, "temperature": prompt.temperature}
        if prompt.stop:
            body["stop"] = list(prompt.stop[:4])  # the OpenAI API takes at most four
        if prompt.seed is not None:
            body["seed"] = prompt.seed
        if self.style == "chat":
            return "/chat/completions", {**body, "messages": [{"role": "user", "content": prompt.text}]}
        return "/completions", {**body, "prompt": prompt.text}

    async def _complete_one(self, client, prompt: TeacherPrompt) -> str | None:
        import httpx

        style = self.style
        path, body = self._body(prompt)
        reason, retry_after = "no_attempt", None
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self._delay(attempt, retry_after))
            retry_after = None
            try:
                status, payload, retry_after = await asyncio.wait_for(self._post(client, path, body), self.timeout)
            except TimeoutError:  # the whole-request deadline (a trickling server)
                reason = "deadline_exceeded"
                continue
            except httpx.TimeoutException:
                reason = "timeout"
                continue
            except httpx.DecodingError:  # a body whose gzip/brotli encoding is broken
                self.fail("unparseable_reply")
                return None
            except httpx.TransportError:
                reason = "connection_error"
                continue
            except ReplyTooLarge:
                self.fail("reply_too_large")
                return None
            if status in RETRY_STATUS:
                reason = f"http_{status}"
                continue
            if status == 400 and style == "chat" and b"chat template" in payload.lower():
                if self.auto:
                    self.style = "completion"  # the stage re-sends this batch as few-shot completions
                self.fail("no_chat_template")
                return None
            if status != 200:
                self.fail(f"http_{status}")
                return None
            return self._reply_text(payload, style)
        self.fail(reason)
        return None

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(MAX_RETRY_AFTER, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return self.backoff * 2 ** (attempt - 1)

    def _reply_text(self, body: bytes, style: str) -> str | None:
        try:
            payload = json.loads(body)  # bytes: UTF-8/16/32 detected; a bad byte is a ValueError
        except (ValueError, RecursionError):  # not JSON, not text, or nested past the recursion limit
            self.fail("unparseable_reply")
            return None
        choices = payload.get("choices") if isinstance(payload, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            self.fail("missing_choices")
            return None
        choice = choices[0]
        if style == "chat":
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
        else:
            text = choice.get("text")
        if not isinstance(text, str) or not text.strip():
            self.fail("empty_content")
            return None
        return text
