"""A real `watt serve` app in its own process, for the hardening tests: SmolLM2 on the batch engine.

`python tests/serve/harden_server.py GGUF HOME PORT` serves until killed; API keys come from HOME's
registry database (read every 0.1 s, so a revoked key stops working at once in tests). Settings the
tests vary come from the environment: WATT_TEST_TIMEOUT (request timeout, s; 60), WATT_TEST_MAX_TOKENS
(64), WATT_TEST_BROKEN_GGUF (a file served on demand as model "broken": its load fails).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


def main(gguf: str, home: str, port: str) -> None:
    import uvicorn

    from wattlm.engines.batching.engine import LlamaCppBatchEngine
    from wattlm.serve import create_app
    from wattlm.serve.auth import KeyAuth
    from wattlm.serve.keys import KeyStore
    from wattlm.serve.limits import Limits

    engine = LlamaCppBatchEngine(Path(gguf), n_ctx=512, n_threads=2, name="smol", max_seqs=2, max_waiting=8)
    loaders = {}
    broken = os.environ.get("WATT_TEST_BROKEN_GGUF")
    if broken:
        loaders["broken"] = lambda: LlamaCppBatchEngine(Path(broken), n_ctx=512, n_threads=2, name="broken")
    limits = Limits(max_tokens=int(os.environ.get("WATT_TEST_MAX_TOKENS", "64")),
                    request_timeout=float(os.environ.get("WATT_TEST_TIMEOUT", "60")))
    app = create_app({"smol": engine}, limits=limits, loaders=loaders,
                     auth=KeyAuth(KeyStore.of_home(Path(home)), cache_seconds=0.1))
    uvicorn.run(app, host="127.0.0.1", port=int(port), log_level="warning")


if __name__ == "__main__":
    main(*sys.argv[1:4])
