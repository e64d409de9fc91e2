"""A teacher behind any OpenAI-compatible endpoint: a company's large model, or our own `watt serve`.

Requests go out concurrently (at most `concurrency` in flight), so a batching server such as ours
decodes several at once. 5xx, 429, 408, timeouts and dropped connections are retried with exponential
backoff (a Retry-After header, if sent, is honoured up to 10 s); every other problem costs only that
prompt and is counted by reason. With style "auto" the teacher starts with chat and switches to plain
completions when the server says the model has no chat template (a base model behind `watt serve`).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from urllib.parse import urlsplit

from wattlm.synth.teachers.base import TeacherBase, TeacherPrompt

API_KEY_ENV = "WATT_TEACHER_API_KEY"
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER = 10.0


def api_base(url: str) -> str:
    """`http://host:port` means the usual `/v1` root; a URL with a path is used as given."""
    url = url.rstrip("/")
    return url + "/v1" if urlsplit(url).path in ("", "/") else url


class OpenAITeacher(TeacherBase):
    def __init__(self, base_url: str, model: str, style: str = "auto", concurrency: int = 4,
                 timeout: float = 120.0, retries: int = 3, backoff: float = 0.5, api_key: str | None = None,
                 registry_id: str | None = None) -> None:
        super().__init__()
        self.base_url, self.model = api_base(base_url), model
        self.auto = style == "auto"
        self.style = "chat" if self.auto else style
        self.concurrency, self.timeout, self.retries, self.backoff = concurrency, timeout, retries, backoff
        self.api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self._registry_id = registry_id

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
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {"model": self.model, "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
        try:
            response = httpx.post(self.base_url + "/chat/completions", json=body, headers=headers, timeout=self.timeout)
        except httpx.HTTPError:
            return
        if response.status_code == 400 and "chat template" in response.text.lower():
            self.style = "completion"

    def complete(self, prompts: Sequence[TeacherPrompt]) -> list[str | None]:
        self.requests += len(prompts)
        replies = asyncio.run(self._complete_all(prompts))
        self.replies += sum(reply is not None for reply in replies)
        return replies

    async def _complete_all(self, prompts: Sequence[TeacherPrompt]) -> list[str | None]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        gate = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient(headers=headers, timeout=self.timeout, limits=limits) as client:

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
                response = await client.post(self.base_url + path, json=body)
            except httpx.TimeoutException:
                reason = "timeout"
                continue
            except httpx.TransportError:
                reason = "connection_error"
                continue
            if response.status_code in RETRY_STATUS:
                reason, retry_after = f"http_{response.status_code}", response.headers.get("retry-after")
                continue
            if response.status_code == 400 and style == "chat" and "chat template" in response.text.lower():
                if self.auto:
                    self.style = "completion"  # the stage re-sends this batch as few-shot completions
                self.fail("no_chat_template")
                return None
            if response.status_code != 200:
                self.fail(f"http_{response.status_code}")
                return None
            return self._reply_text(response, style)
        self.fail(reason)
        return None

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(MAX_RETRY_AFTER, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return self.backoff * 2 ** (attempt - 1)

    def _reply_text(self, response, style: str) -> str | None:
        try:
            payload = response.json()
        except ValueError:
            self.fail("non_json_response")
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
