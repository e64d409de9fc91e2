"""A GGUF model through llama.cpp's C API: weights, vocabulary, tokenizer and metadata.

The batching scheduler needs the raw model handle to build its own multi-sequence context, so it
cannot use `llama_cpp.Llama` (which owns a single-sequence context). Tokenization here matches
`Llama.tokenize(..., special=True)` token for token, so both engines count prompts identically.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path

from wattlm.errors import NotFound, WattError


class GgufModel:
    """Loaded weights plus the vocabulary operations the engine needs. `close()` frees the weights."""

    def __init__(self, gguf_path: Path) -> None:
        import llama_cpp

        self._llama = llama_cpp
        # llama-cpp-python forwards llama.cpp's log (thousands of lines per load) to this logger; keep
        # errors only, as `Llama(verbose=False)` does, unless the application configured it.
        llama_logger = logging.getLogger("llama-cpp-python")
        if llama_logger.level == logging.NOTSET:
            llama_logger.setLevel(logging.ERROR)
        gguf_path = Path(gguf_path)
        if not gguf_path.is_file():
            raise NotFound(f"GGUF file not found: {gguf_path}")
        llama_cpp.llama_backend_init()  # idempotent; llama-cpp-python also calls it on import
        params = llama_cpp.llama_model_default_params()
        self.handle = llama_cpp.llama_model_load_from_file(str(gguf_path).encode("utf-8"), params)
        if not self.handle:
            raise WattError(f"cannot load GGUF {gguf_path}: llama.cpp rejected the file")
        self.vocab = llama_cpp.llama_model_get_vocab(self.handle)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(self.handle)
        self.bos = llama_cpp.llama_vocab_bos(self.vocab)
        self.eos = llama_cpp.llama_vocab_eos(self.vocab)
        self._add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self.metadata = self._read_metadata()
        self.path = gguf_path
        self._users = 1  # engines sharing these weights (a base model and its LoRA adapters)
        self._users_lock = threading.Lock()

    def share(self) -> GgufModel:
        """The same weights for one more engine; each user calls `close()` once."""
        with self._users_lock:
            if not self.handle:
                raise WattError(f"the weights of {self.path} were already freed")
            self._users += 1
        return self

    def tokenize(self, text: str, add_special: bool = True) -> list[int]:
        llama_cpp = self._llama
        data = text.encode("utf-8")
        capacity = len(data) + 8  # a token covers at least one byte, plus BOS/EOS
        ids = (llama_cpp.llama_token * capacity)()
        # parse_special=True: control tokens written by chat templates (<|im_start|>) map to their ids.
        count = llama_cpp.llama_tokenize(self.vocab, data, len(data), ids, capacity, self._add_bos and add_special, True)
        if count < 0:
            raise WattError(f"cannot tokenize a prompt of {len(data)} bytes")
        tokens = list(ids[:count])
        if len(tokens) >= 2 and tokens[0] == tokens[1] == self.bos:
            # Templates such as Gemma's start with {{ bos_token }} and the tokenizer adds one too;
            # a doubled BOS degrades the output, so keep one.
            tokens = tokens[1:]
        return tokens

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (control tokens render as b"" unless `special`)."""
        llama_cpp = self._llama
        buffer = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, 64, 0, special)
        if size < 0:  # a longer piece: the negative size is what it needs
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.vocab, token, buffer, -size, 0, special)
        return buffer.raw[:size]

    def detokenize(self, tokens: list[int], special: bool = True) -> str:
        data = b"".join(self.piece(token, special=special) for token in tokens)
        return data.decode("utf-8", errors="replace")

    def token_text(self, token: int) -> str:
        return "" if token < 0 else self.piece(token, special=True).decode("utf-8", errors="replace")

    def is_end_of_generation(self, token: int) -> bool:
        return bool(self._llama.llama_vocab_is_eog(self.vocab, token))

    def close(self) -> None:
        """Free the weights (and the LoRA adapters loaded on them) once their last user closes."""
        with self._users_lock:
            self._users -= 1
            if self._users > 0 or not self.handle:
                return
            handle, self.handle = self.handle, None
        self._llama.llama_model_free(handle)

    def _read_metadata(self) -> dict[str, str]:
        llama_cpp = self._llama

        def read(fn, index: int) -> str:
            size = 256
            while True:
                buffer = ctypes.create_string_buffer(size)
                needed = fn(self.handle, index, buffer, size)
                if needed < size:
                    return buffer.value.decode("utf-8", errors="replace")
                size = needed + 1  # the value was truncated: retry with room for it

        return {
            read(llama_cpp.llama_model_meta_key_by_index, index): read(llama_cpp.llama_model_meta_val_str_by_index, index)
            for index in range(llama_cpp.llama_model_meta_count(self.handle))
        }
