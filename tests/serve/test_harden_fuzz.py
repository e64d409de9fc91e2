"""Random `response_format` schemas and sampling fields, with auth on, against SmolLM2 in its own process.

Nothing is stripped: `n`, `seed`, `logprobs` and schemas with counts, patterns and nesting on both
sides of the caps go to the real batch engine. Asserted: no 5xx, every 400 in OpenAI's shape, and the
process is alive at the end (a grammar that crashes llama.cpp kills it).
"""

from __future__ import annotations

import pytest

from wattlm.serve.keys import KeyStore

from .test_harden import start_server, stop_server

pytestmark = pytest.mark.integration


def schemas():
    from hypothesis import strategies as st

    counts = st.one_of(st.integers(0, 300), st.sampled_from([256, 257, 100000]))
    patterns = st.lists(st.sampled_from(["a", "[0-9]", "\\d", "(ab)", "x{3}", "y{2,5}", "z{300}", "|", "?", "*"]),
                        max_size=6).map(lambda parts: "^" + "".join(parts) + "$")
    leaves = st.one_of(
        st.builds(lambda low, high: {"type": "string", "minLength": min(low, high), "maxLength": high}, counts, counts),
        st.builds(lambda pattern: {"type": "string", "pattern": pattern}, patterns),
        st.just({"type": "integer"}), st.just({"type": "boolean"}),
        st.builds(lambda values: {"enum": values}, st.lists(st.text(max_size=5), min_size=1, max_size=4)),
    )

    def extend(children):
        return st.one_of(
            st.builds(lambda props: {"type": "object", "properties": props, "required": list(props)},
                      st.dictionaries(st.sampled_from(["a", "b", "c"]), children, min_size=1, max_size=3)),
            st.builds(lambda item, low: {"type": "array", "items": item, "minItems": low % 4, "maxItems": low},
                      children, counts),
            st.builds(lambda options: {"anyOf": options}, st.lists(children, min_size=1, max_size=2)),
        )

    return st.recursive(leaves, extend, max_leaves=8)


def test_random_schemas_and_fields_with_auth_on_never_give_a_5xx(smollm2_path, tmp_path):
    pytest.importorskip("llama_cpp")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    key, _ = KeyStore.of_home(tmp_path).create("fuzz")
    served = start_server(smollm2_path, tmp_path)
    statuses: list[int] = []
    try:
        @settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
        @given(schema=schemas(), n=st.integers(0, 3), seed=st.integers(-(2**64), 2**64), logprobs=st.booleans())
        def probe(schema, n, seed, logprobs):
            body = {"model": "smol", "messages": [{"role": "user", "content": "JSON please."}], "max_tokens": 8,
                    "n": n, "seed": seed, "logprobs": logprobs, "temperature": 0.8,
                    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}}
            response = served.post("/v1/chat/completions", body, key=key)
            statuses.append(response.status_code)
            assert response.status_code < 500, (body, response.text)
            if response.status_code != 200:
                assert set(response.json()["error"]) == {"message", "type", "param", "code"}
            assert served.alive(), body

        probe()
        print(f"statuses: { {code: statuses.count(code) for code in set(statuses)} }")
        assert statuses.count(200) >= 5 and statuses.count(400) >= 5
        assert served.post("/v1/chat/completions", {"model": "smol", "messages": [{"role": "user", "content": "x"}],
                                                    "max_tokens": 2}).status_code == 401
    finally:
        stop_server(served)
