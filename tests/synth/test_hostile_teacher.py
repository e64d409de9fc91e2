"""A hostile teacher endpoint on loopback: deep JSON, a 100 MB body, a trickled body, invalid UTF-8.
Each is counted by its reason, no reply is read past the cap, and the synth stage still finishes."""

from __future__ import annotations

import json
import threading
import time
import warnings
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from wattlm.data.stage import text_dataset
from wattlm.registry import Registry
from wattlm.synth.config import SynthConfig
from wattlm.synth.parsing import parse_reply
from wattlm.synth.stage import synthesize
from wattlm.synth.teachers.openai_http import OpenAITeacher, warn_plain_http_key

from .scripted import passage_doc

MiB = 2**20
# marker -> misbehaviour (the passage's marker word picks it, as in scripted.py)
HOSTILE = {
    "alpha": "good",
    "kilo": "deep_body",  # the HTTP body itself is '[' * 5000
    "lima": "deep_content",  # valid JSON whose message content is '[' * 5000
    "mike": "huge_body",  # 100 MB, streamed in 64 KB writes
    "november": "trickle",  # one byte every 0.2 s
    "oscar": "bad_utf8",  # 200 with bytes that are not UTF-8
}


def _good(marker: str) -> bytes:
    content = json.dumps({"pairs": [{"question": f"How often is the {marker} transformer tested?",
                                     "answer": f"The {marker} transformer is tested every six months."}]})
    return json.dumps({"choices": [{"message": {"content": content}}]}).encode()


class HostileHandler(BaseHTTPRequestHandler):
    sent: dict[str, int] = {}  # marker -> bytes the server wrote before the client hung up (one server per test)

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        prompt = body["messages"][-1]["content"]
        marker = next((m for m in HOSTILE if f"The {m} substation" in prompt), None)
        if "fully supported by the passage" in prompt or "Reply with the short words" in prompt:
            return self._send(json.dumps({"choices": [{"message": {"content": "yes"}}]}).encode())
        behaviour = HOSTILE.get(marker, "good")
        if behaviour == "deep_body":
            return self._send(b"[" * 5000)
        if behaviour == "deep_content":
            return self._send(json.dumps({"choices": [{"message": {"content": "[" * 5000}}]}).encode())
        if behaviour == "bad_utf8":
            return self._send(b'{"choices": [{"message": {"content": "\xff\xfe\xc3"}}]}')
        if behaviour == "huge_body":
            return self._stream(marker, 100 * MiB, 64 * 1024, pause=0.0)
        if behaviour == "trickle":
            return self._stream(marker, 10_000, 1, pause=0.2)
        return self._send(_good(marker))

    def _send(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, marker: str, total: int, step: int, pause: float) -> None:
        """Send `total` bytes `step` at a time; stops when the client hangs up (or after 20 s at most)."""
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(total))
        self.end_headers()
        chunk, written, stop_at = b" " * step, 0, time.monotonic() + 20
        try:
            while written < total and time.monotonic() < stop_at:
                self.wfile.write(chunk)
                self.wfile.flush()
                written += step
                if pause:
                    time.sleep(pause)
        except OSError:  # the client closed the connection: what we want
            pass
        HostileHandler.sent[marker] = max(HostileHandler.sent.get(marker, 0), written)

    def log_message(self, *args):
        pass


@contextmanager
def hostile_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), HostileHandler)
    server.daemon_threads = True  # a handler still writing cannot keep the test process alive
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_hostile_replies_are_counted_by_reason_and_the_stage_finishes(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for marker in HOSTILE:
        (folder / f"{marker}.txt").write_text(passage_doc(marker), encoding="utf-8")
    registry = Registry(tmp_path / "ws")
    docs = text_dataset(registry, folder, "docs")
    config = SynthConfig(questions_per_chunk=1, concurrency=6, retries=0, heldout_fraction=0.0, style="chat",
                         timeout=2.0)
    started = time.monotonic()
    with hostile_server() as url:
        teacher = OpenAITeacher(url, "big-model", style="chat", concurrency=6, retries=0, timeout=2.0,
                                max_reply_bytes=MiB)
        art, _ = synthesize(registry, docs, teacher, config, name="hostile", progress=False)
        seconds = time.monotonic() - started
        deadline = time.monotonic() + 15  # the handler notices the closed socket on its next write
        while "mike" not in HostileHandler.sent and time.monotonic() < deadline:
            time.sleep(0.05)
    assert dict(teacher.failures) == {"unparseable_reply": 2, "reply_too_large": 1, "deadline_exceeded": 1}
    stats = json.loads((art.path / "stats.json").read_text())
    assert stats["teacher_failures"] == dict(teacher.failures)
    assert stats["dropped"]["unparseable_reply"] == 1  # the deep content, parsed by the stage
    assert stats["examples"]["train"] == 1  # alpha's good pair survives
    assert HostileHandler.sent["mike"] < 20 * MiB  # the client hung up near the cap, not after 100 MB
    print(f"\nhostile teacher: stage finished in {seconds:.1f} s; server wrote {HostileHandler.sent['mike'] / MiB:.1f} "
          f"MiB of the 100 MiB body before the client closed")


def test_deep_reply_text_is_unparseable_not_a_crash():
    assert parse_reply("[" * 5000, "qa", "json") == ([], "unparseable_reply")
    assert parse_reply("Sure: " + "[" * 100_000, "qa", "json") == ([], "unparseable_reply")  # one try, not 100k
    assert parse_reply("{" * 100_000, "qa", "json") == ([], "not_json")  # each try fails at once: not deep


def test_api_key_over_plain_http_warns_once_for_a_remote_host():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_plain_http_key("http://10.1.2.3:8000/v1")
        warn_plain_http_key("http://10.1.2.3:8000/v1")
        warn_plain_http_key("http://127.0.0.1:8000/v1")
        warn_plain_http_key("http://localhost:8000/v1")
        warn_plain_http_key("https://teacher.example.com/v1")
    assert len(caught) == 1 and "plain http to 10.1.2.3" in str(caught[0].message)
    with pytest.warns(UserWarning, match="plain http"):
        OpenAITeacher("http://192.0.2.7:9000", "m", api_key="sk-test")
