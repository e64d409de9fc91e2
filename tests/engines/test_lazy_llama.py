"""open_llama: a context nobody closed is closed at exit while llama_cpp's modules are still whole."""

import subprocess
import sys

SCRIPT = """
import atexit, functools, sys
atexit.register(lambda: print("later exit handlers", flush=True))  # registered first: runs after ours
from wattlm.engines.lazy_llama import open_llama

@functools.lru_cache(maxsize=1)
def cached(path):  # a per-process cache, as the perplexity filter keeps: alive until the interpreter ends
    return open_llama(path, n_ctx=64, n_threads=1)

llm = cached(sys.argv[1])
close = llm.close
def reported():
    print("closed", flush=True)
    close()
llm.close = reported
"""


def test_an_open_context_is_closed_by_the_exit_hook(smollm2_path):
    ran = subprocess.run([sys.executable, "-c", SCRIPT, str(smollm2_path)], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 0, ran.stderr
    lines = ran.stdout.splitlines()
    # Closed by the hook, before the exit handlers registered ahead of it, not by __del__ at teardown.
    assert lines[:2] == ["closed", "later exit handlers"], ran.stdout
    assert "Exception ignored" not in ran.stderr


def test_the_exit_list_does_not_keep_a_context_alive(smollm2_path):
    import gc
    import weakref

    from wattlm.engines import lazy_llama

    llm = lazy_llama.open_llama(smollm2_path, n_ctx=64, n_threads=1)
    assert llm in lazy_llama._open_llamas
    gone = weakref.ref(llm)
    llm.close()
    del llm
    gc.collect()
    assert gone() is None  # memory is freed when the caller drops it, not at exit
