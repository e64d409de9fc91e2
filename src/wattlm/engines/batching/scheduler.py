"""Continuous batching over one llama.cpp context.

The process's compute thread (engines/compute_thread.py) steps the scheduler. Each step it (1) drops
sequences whose client left, (2) admits waiting requests into free slots, reusing cached prompt
prefixes, (3) builds ONE `llama_decode` batch holding the next token of every generating sequence plus
at most `prefill_chunk` prompt tokens of the sequences still reading their prompt, so a long prompt
never stalls the others for more than a chunk, and (4) samples one token per sequence whose logits
came out.

The KV cache has one stream per slot (`kv_unified=False`): a sequence's cells sit at the same
indices as in a single-sequence context, so attention sums in the same order and greedy answers are
identical to `LlamaCppEngine`'s (a unified cache interleaves sequences' cells and changes rounding).
llama.cpp splits such a batch into micro-batches of *consecutive* seq ids, so the batch is written in
seq-id order and new requests take the lowest free slot, which keeps the busy slots contiguous.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import deque
from pathlib import Path

import numpy as np

from wattlm.engines.base import EngineOverloaded
from wattlm.engines.batching.model import GgufModel
from wattlm.engines.batching.sequence import FINISHED, Sequence, Slot, common_prefix
from wattlm.engines.compute_thread import compute_thread
from wattlm.engines.lazy_llama import default_threads
from wattlm.errors import WattError

log = logging.getLogger(__name__)


# Reusing a free slot's own cached prefix costs nothing; copying another slot's stream costs a copy of
# n_ctx cells, worth it only for a long shared prefix (a system prompt).
MIN_OWN_REUSE = 16
MIN_COPIED_REUSE = 64


def batch_context_params(llama_cpp, n_ctx: int, max_seqs: int, prefill_chunk: int, n_threads: int | None,
                         flash_attn: bool):
    """The llama.cpp context settings of the batch engine (also what bench/llama_ceiling.py times)."""
    params = llama_cpp.llama_context_default_params()
    params.n_ctx = n_ctx * max_seqs
    params.n_batch = params.n_ubatch = max_seqs + prefill_chunk  # a decode token each + one chunk: one micro-batch
    params.n_seq_max = max_seqs
    params.kv_unified = False  # one KV stream of n_ctx cells per slot (see the module docstring)
    # Explicit either way (llama.cpp's own default is AUTO): off by default, as in `llama_cpp.Llama`'s default,
    # so greedy text is the simple engine's and earlier releases'; on (`--flash-attn on`) the flash kernel is
    # faster on CPU but rounds differently.
    params.flash_attn_type = (llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if flash_attn
                              else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    # Decode and prompt threads alike; without a count, the cores we may use (not llama.cpp's fixed 4).
    params.n_threads = params.n_threads_batch = n_threads or default_threads()
    return params


class Scheduler:
    def __init__(
        self,
        model: GgufModel,
        n_ctx: int,
        max_seqs: int,
        max_waiting: int,
        prefill_chunk: int,
        n_threads: int | None,
        lora: Path | None = None,
        flash_attn: bool = False,
    ) -> None:
        import llama_cpp

        self._llama = llama_cpp
        self._model = model
        self.n_ctx = n_ctx
        self.max_seqs = max_seqs
        self.max_waiting = max_waiting
        self._prefill_chunk = prefill_chunk
        self._capacity = max_seqs + prefill_chunk  # tokens in one batch: a decode token each + one chunk
        params = batch_context_params(llama_cpp, n_ctx, max_seqs, prefill_chunk, n_threads, flash_attn)
        self._ctx = llama_cpp.llama_init_from_model(model.handle, params)
        if not self._ctx:
            raise WattError(f"llama.cpp could not create a context of {params.n_ctx} cells for {max_seqs} sequences")
        if lora is not None:
            self._apply_lora(lora)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(self._capacity, 0, 1)
        self._slots = [Slot(seq_id) for seq_id in range(max_seqs)]
        self._running: list[Sequence] = []  # in admission order: earlier prompts prefill first
        self._waiting: deque[Sequence] = deque()
        self._lock = threading.Lock()  # guards _waiting, _n_running, _stopping (the compute thread does the waiting)
        self._n_running = 0
        self._stopping = False
        self._closed = threading.Event()  # set by the compute thread once it has let go of this scheduler
        self.counters = {"steps": 0, "prompt_tokens": 0, "reused_prompt_tokens": 0, "generated_tokens": 0}
        # Stepped by the process's one compute thread, with every other llama.cpp context of the process.
        self._compute = compute_thread()
        self._compute.add(self)

    def _apply_lora(self, lora: Path) -> None:
        """Set a LoRA adapter on this context: every sequence decoded here uses it.

        llama.cpp keeps adapters per context (`llama_set_adapters_lora`), not per sequence, so one
        context serves one adapter; the adapter is freed with the model's weights.
        """
        llama_cpp = self._llama
        adapter = llama_cpp.llama_adapter_lora_init(self._model.handle, str(lora).encode("utf-8"))
        if not adapter:
            llama_cpp.llama_free(self._ctx)
            raise WattError(f"cannot load LoRA adapter {lora}: llama.cpp rejected it (not a GGUF LoRA of this model?)")
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(1.0)
        if llama_cpp.llama_set_adapters_lora(self._ctx, adapters, 1, scales) != 0:
            llama_cpp.llama_free(self._ctx)
            raise WattError(f"llama.cpp could not apply LoRA adapter {lora}")

    # ---- request-thread side -------------------------------------------------------------------

    def submit(self, sequence: Sequence) -> None:
        with self._lock:
            if self._stopping:
                raise WattError("the engine is shutting down")
            if self._n_running + len(self._waiting) >= self.max_seqs + self.max_waiting:
                raise EngineOverloaded(
                    f"server busy: {self._n_running} requests running and {len(self._waiting)} waiting; retry later"
                )
            self._waiting.append(sequence)
        self._compute.wake()

    def cancel(self, sequence: Sequence) -> None:
        """The client is gone: the scheduler frees the sequence's slot before its next step."""
        if sequence.done:
            return
        sequence.cancelled.set()
        with self._lock:
            if sequence in self._waiting:  # never admitted: it must not hold a queue place any longer
                self._waiting.remove(sequence)
                sequence.done = True
        self._compute.wake()

    @property
    def running(self) -> int:
        return self._n_running

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def close(self) -> None:
        with self._lock:
            self._stopping = True
        if self._compute.on_thread():
            self.step()
        else:
            self._compute.wake()
            self._closed.wait(timeout=60)
        if self._ctx and self._closed.is_set():
            self._llama.llama_batch_free(self._batch)
            self._llama.llama_free(self._ctx)
            self._ctx = None

    # ---- compute thread --------------------------------------------------------------------------

    def has_work(self) -> bool:
        # Read under the compute thread's lock without taking `_lock`: submit() holds `_lock` and then
        # wakes the compute thread, so taking them in the other order here could deadlock.
        return self._stopping or bool(self._waiting) or bool(self._running)

    def step(self) -> None:
        if self._closed.is_set():
            return
        if self._stopping:
            self._fail_all(WattError("the engine was shut down"))
            self._compute.discard(self)
            self._closed.set()
            return
        try:
            self._step()
        except Exception as error:  # noqa: BLE001 -- a failed step fails its requests, not the server
            log.exception("scheduler step failed")
            self._fail_all(error)

    def _step(self) -> None:
        for sequence in [seq for seq in self._running if seq.cancelled.is_set()]:
            self._release(sequence)
        self._admit()
        fed = self._fill_batch()
        if not fed:
            return
        status = self._llama.llama_decode(self._ctx, self._batch)
        if status != 0:
            raise WattError(f"llama_decode failed with status {status}")
        self.counters["steps"] += 1
        for sequence, count, output_index in fed:
            sequence.slot.cached.extend(sequence.pending[:count])
            del sequence.pending[:count]
            if output_index is not None:
                self._sample(sequence, output_index)

    def _sample(self, sequence: Sequence, output_index: int) -> None:
        # Only this output's row, as a view of llama.cpp's buffer (no copy), valid until the next decode.
        pointer = self._llama.llama_get_logits_ith(self._ctx, output_index)
        row = np.ctypeslib.as_array(pointer, shape=(self._model.n_vocab,))  # (n_vocab,) float32
        token = sequence.sampler.sample_at(self._ctx, output_index, row)
        sequence.sampler.accept(token)
        sequence.generated += 1
        self.counters["generated_tokens"] += 1
        sequence.emit(token)
        if token in sequence.end_of_generation or sequence.generated >= sequence.max_tokens:
            self._release(sequence)
            sequence.emit(FINISHED)
        else:
            sequence.pending = [token]

    def _admit(self) -> None:
        while True:
            with self._lock:
                if not self._waiting or self._n_running >= self.max_seqs:
                    return
                sequence = self._waiting.popleft()
                if sequence.cancelled.is_set():
                    sequence.done = True
                    continue
                self._n_running += 1
            self._place(sequence)
            self._running.append(sequence)

    def _place(self, sequence: Sequence) -> None:
        """Give `sequence` a free slot, reusing the longest cached prefix of its prompt."""
        llama_cpp, memory = self._llama, self._memory
        prompt = sequence.prompt_tokens
        reusable = len(prompt) - 1  # the last prompt token is always computed: its logits start the answer
        free = [slot for slot in self._slots if slot.sequence is None]

        def own_reuse(slot: Slot) -> int:
            reuse = min(common_prefix(slot.cached, prompt), reusable)
            return reuse if reuse >= MIN_OWN_REUSE else 0

        # The lowest free slot keeps busy slots contiguous, unless another free one holds our prefix.
        target = max(free, key=lambda slot: (own_reuse(slot), -slot.seq_id))
        own = min(common_prefix(target.cached, prompt), reusable)
        donors = [(min(common_prefix(slot.cached, prompt), reusable), slot) for slot in self._slots if slot is not target]
        shared, donor = max(donors, key=lambda pair: pair[0], default=(0, None))
        if donor is not None and shared >= own + MIN_COPIED_REUSE:
            # Another slot holds a longer prefix (a shared system prompt): copy its stream, cut the rest.
            llama_cpp.llama_memory_seq_rm(memory, target.seq_id, -1, -1)
            llama_cpp.llama_memory_seq_cp(memory, donor.seq_id, target.seq_id, -1, -1)
            llama_cpp.llama_memory_seq_rm(memory, target.seq_id, shared, -1)
            reused = shared
        elif llama_cpp.llama_memory_seq_rm(memory, target.seq_id, own, -1):
            reused = own
        else:  # the cache cannot cut a sequence mid-way (recurrent models): start from scratch
            llama_cpp.llama_memory_seq_rm(memory, target.seq_id, -1, -1)
            reused = 0
        target.cached = prompt[:reused]
        target.sequence = sequence
        sequence.slot = target
        sequence.pending = list(prompt[reused:])
        self.counters["prompt_tokens"] += len(prompt)
        self.counters["reused_prompt_tokens"] += reused

    def _fill_batch(self) -> list[tuple[Sequence, int, int | None]]:
        """Write this step's tokens into the batch; return (sequence, tokens fed, output row or None)."""
        plan = [(sequence, 1, True) for sequence in self._running if not sequence.prefilling]
        budget = self._prefill_chunk
        for sequence in self._running:  # admission order: the oldest prompt is read first
            if sequence.prefilling and budget > 0:
                count = min(len(sequence.pending), budget)
                plan.append((sequence, count, count == len(sequence.pending)))
                budget -= count
        plan.sort(key=lambda item: item[0].slot.seq_id)  # consecutive seq ids form one micro-batch
        batch, fed, n_tokens = self._batch, [], 0
        for sequence, count, wants_logits in plan:
            slot = sequence.slot
            for offset in range(count):
                batch.token[n_tokens] = sequence.pending[offset]
                batch.pos[n_tokens] = len(slot.cached) + offset
                batch.n_seq_id[n_tokens] = 1
                batch.seq_id[n_tokens][0] = slot.seq_id
                batch.logits[n_tokens] = wants_logits and offset == count - 1
                n_tokens += 1
            fed.append((sequence, count, n_tokens - 1 if wants_logits else None))
        batch.n_tokens = n_tokens
        return fed

    def _release(self, sequence: Sequence) -> None:
        """End a sequence; its slot keeps the KV cells as a prefix cache for later requests."""
        sequence.done = True
        sequence.slot.sequence = None
        self._running.remove(sequence)
        with self._lock:
            self._n_running -= 1

    def _fail_all(self, error: BaseException) -> None:
        for sequence in list(self._running):
            self._release(sequence)
            # The failed batch may have left partial cells behind: forget this slot's cache.
            self._llama.llama_memory_seq_rm(self._memory, sequence.slot.seq_id, -1, -1)
            sequence.slot.cached = []
            sequence.emit(error)
        if self._stopping:
            with self._lock:
                waiting, self._waiting = list(self._waiting), deque()
            for sequence in waiting:
                sequence.emit(error)
