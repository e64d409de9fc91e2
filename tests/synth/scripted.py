"""A scripted OpenAI-compatible endpoint on loopback: each passage's marker word picks a misbehaviour."""

from __future__ import annotations

import json
import threading
from collections import Counter
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# marker -> what the endpoint does when a prompt contains it
BEHAVIOURS = {
    "alpha": "good",
    "bravo": "prose",  # 200 with chat text that holds no JSON
    "charlie": "empty",  # 200 with empty content
    "delta": "flaky",  # 500 on the first request, then good
    "echo": "no_answer",  # JSON without the answer field
    "foxtrot": "invented",  # an answer the passage does not support
    "golf": "garbage_body",  # 200 whose body is not JSON at all
    "hotel": "no_choices",  # 200 JSON without choices
    "india": "down",  # 500 every time
}


def passage_doc(marker: str) -> str:
    """A document long enough to make one chunk; the good answer is its second sentence's fact."""
    return (f"The {marker} substation is inspected by the night shift. Its {marker} transformer is tested "
            f"every six months with dissolved gas analysis. Oil samples from the {marker} unit go to the "
            f"central laboratory in sealed bottles.")


def _content(behaviour: str, marker: str) -> str | None:
    good = {"pairs": [{"question": f"How often is the {marker} transformer tested?",
                       "answer": f"The {marker} transformer is tested every six months."}]}
    if behaviour in ("good", "flaky"):
        return json.dumps(good)
    if behaviour == "prose":
        return "I think the passage is about substations."
    if behaviour == "empty":
        return ""
    if behaviour == "no_answer":
        return json.dumps({"pairs": [{"question": f"Who inspects the {marker} substation?"}]})
    if behaviour == "invented":
        return json.dumps({"pairs": [{"question": f"Who built the {marker} substation?",
                                      "answer": "Engineers from Siemens during 1987 construction works."}]})
    return None


class ScriptedEndpoint:
    def __init__(self, chat: bool = True) -> None:
        self.chat = chat
        self.hits: Counter = Counter()
        self.paths: Counter = Counter()
        self.lock = threading.Lock()

    def respond(self, path: str, body: dict) -> tuple[int, bytes]:
        if path.endswith("/chat/completions"):
            if not self.chat:
                return 400, json.dumps({"error": {"message": "model 'base' has no chat template"}}).encode()
            prompt = body["messages"][-1]["content"]
        else:
            prompt = body["prompt"]
        marker = next((m for m in BEHAVIOURS if f"The {m} substation" in prompt), None)
        if "fully supported by the passage" in prompt:  # the judge prompt: approve alpha only
            verdict = "yes" if marker == "alpha" else "No."
            return 200, json.dumps({"choices": [{"message": {"content": verdict}}]}).encode()
        if "Reply with the short words of the passage" in prompt:  # the round-trip prompt: alpha answers right
            answer = "tested every six months" if marker == "alpha" else "the night shift"
            return 200, json.dumps({"choices": [{"message": {"content": answer}}]}).encode()
        with self.lock:
            self.paths[path] += 1
            self.hits[marker] += 1
            count = self.hits[marker]
        if marker is None:
            return 200, json.dumps({"choices": [{"text": " yes", "message": {"content": "yes"}}]}).encode()
        behaviour = BEHAVIOURS[marker]
        if behaviour == "down" or (behaviour == "flaky" and count == 1):
            return 500, b'{"error": "boom"}'
        if behaviour == "garbage_body":
            return 200, b"<html>gateway</html>"
        if behaviour == "no_choices":
            return 200, json.dumps({"object": "chat.completion"}).encode()
        content = _content(behaviour, marker)
        if not self.chat:  # a few-shot continuation after "Question:"
            content = (f" How often is the {marker} transformer tested?\n"
                       f"Answer: The {marker} transformer is tested every six months.")
            return 200, json.dumps({"choices": [{"text": content, "finish_reason": "stop"}]}).encode()
        return 200, json.dumps({"choices": [{"message": {"role": "assistant", "content": content},
                                             "finish_reason": "stop"}]}).encode()


@contextmanager
def scripted_server(endpoint: ScriptedEndpoint):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            length = int(self.headers.get("content-length", 0))
            status, payload = endpoint.respond(self.path, json.loads(self.rfile.read(length)))
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
