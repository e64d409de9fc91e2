"""One thread computes every llama.cpp graph of the process (engines/compute_thread.py)."""

from __future__ import annotations

import threading

import pytest

from wattlm.engines.compute_thread import ComputeThread, compute_thread


class Counter:
    """A stepped client: `todo` steps of work, each recorded with the thread that ran it."""

    def __init__(self, todo: int) -> None:
        self.todo, self.threads, self.done = todo, [], threading.Event()

    def has_work(self) -> bool:
        return self.todo > 0

    def step(self) -> None:
        self.threads.append(threading.current_thread().name)
        self.todo -= 1
        if self.todo == 0:
            self.done.set()


def test_calls_run_on_the_compute_thread_and_hand_back_results_and_errors():
    worker = ComputeThread()
    assert worker.call(lambda: threading.current_thread().name) == "wattlm-llama-compute"
    with pytest.raises(ZeroDivisionError):
        worker.call(lambda: 1 / 0)
    # A call made on the compute thread itself runs at once (no deadlock waiting on itself).
    assert worker.call(lambda: worker.call(lambda: "inner")) == "inner"


def test_clients_are_stepped_in_turn_until_they_have_no_work():
    worker = ComputeThread()
    first, second = Counter(5), Counter(3)
    worker.add(first)
    worker.add(second)
    assert first.done.wait(10) and second.done.wait(10)
    assert set(first.threads) == set(second.threads) == {"wattlm-llama-compute"}
    second.todo = 2  # new work: it sleeps until woken
    worker.wake()
    assert worker.call(lambda: None) is None and second.todo == 0


def test_discard_from_another_thread_waits_for_a_step_in_progress():
    worker = ComputeThread()
    entered, release = threading.Event(), threading.Event()

    class Slow(Counter):
        def step(self) -> None:
            entered.set()
            release.wait(10)
            super().step()

    slow = Slow(1000)
    worker.add(slow)
    assert entered.wait(10)
    discarded = threading.Thread(target=worker.discard, args=(slow,))
    discarded.start()
    discarded.join(0.2)
    assert discarded.is_alive()  # the step has not finished: discard waits for it
    release.set()
    discarded.join(10)
    assert not discarded.is_alive()
    steps = len(slow.threads)
    assert worker.call(lambda: len(slow.threads)) == steps  # never stepped again


def test_one_compute_thread_per_process():
    assert compute_thread() is compute_thread()


# ---- the real SmolLM2: no graph is computed on any other thread ------------------------------------


def test_every_llama_decode_of_every_context_runs_on_the_compute_thread(smollm2_path, monkeypatch):
    llama_cpp = pytest.importorskip("llama_cpp")
    import llama_cpp.llama_cpp as bindings

    from wattlm.engines.batching.engine import LlamaCppBatchEngine
    from wattlm.engines.llamacpp import LlamaCppEngine
    from wattlm.engines.params import SamplingParams

    threads: set[str] = set()
    real = bindings.llama_decode

    def recorded(ctx, batch):
        threads.add(threading.current_thread().name)
        return real(ctx, batch)

    # The batch engine calls the package's name, llama-cpp-python's `Llama` its bindings' module.
    monkeypatch.setattr(llama_cpp, "llama_decode", recorded)
    monkeypatch.setattr(bindings, "llama_decode", recorded)
    greedy = SamplingParams(max_tokens=4, temperature=0)
    first = LlamaCppBatchEngine(smollm2_path, n_ctx=256, n_threads=2, max_seqs=2)
    second = LlamaCppBatchEngine(smollm2_path, n_ctx=256, n_threads=2, max_seqs=2)  # a second model or adapter
    simple = LlamaCppEngine(smollm2_path, n_ctx=256, n_threads=2)
    try:
        for engine in (first, second, simple):
            assert list(engine.generate("The grid", greedy))
            assert engine.embed(["the grid"])[0]
        assert first.generate_with_logprobs("The grid", SamplingParams(max_tokens=2, temperature=0), 1, echo=True)
    finally:
        for engine in (first, second, simple):
            engine.close()
    assert threads == {"wattlm-llama-compute"}


def test_a_step_that_raises_does_not_stop_the_thread(caplog):
    worker = ComputeThread()

    class Broken(Counter):
        def step(self) -> None:
            super().step()
            raise RuntimeError("a bug in a client")

    broken, healthy = Broken(1), Counter(2)
    worker.add(broken)
    worker.add(healthy)
    assert healthy.done.wait(10) and broken.done.wait(10)
    assert worker.call(lambda: "still here") == "still here"
    assert "a step raised" in caplog.text
