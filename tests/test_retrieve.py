from rag.retrieve import is_english, rrf_fuse, search
from rag.tokens import pinyin_names, romanised_names


def test_rrf_fuse_rewards_agreement():
    fused = rrf_fuse([[1, 2, 3], [3, 1]], [1.0, 1.0], k=60)
    assert max(fused, key=fused.get) == 1
    assert fused[3] > fused[2]
    assert rrf_fuse([], [], 60) == {}


def test_simplified_query_finds_traditional_pinyin_text(runtime):
    hits = search(runtime.index, runtime.embedder, "松岭市旅游收入", k=3)
    assert hits[0].chunk.doc == "forest.txt"
    assert hits[0].chunk.text == (runtime.cfg.corpus / "forest.txt").read_text(encoding="utf-8")[
        hits[0].chunk.start:hits[0].chunk.end]


def test_traditional_query_and_exact_figures(runtime):
    assert search(runtime.index, runtime.embedder, "青禾縣設立了多少名河長", k=3)[0].chunk.doc == "river.txt"
    assert search(runtime.index, runtime.embedder, "智能回收站300个", k=3)[0].chunk.doc == "notice.txt"


def test_dense_alone_ranks_by_meaning(runtime):
    hits = search(runtime.index, runtime.embedder, "森林公园 游客", k=3, weights=(0.0, 1.0))
    assert hits[0].chunk.doc == "forest.txt"


def test_english_names_meet_chinese_words(runtime):
    assert is_english("How many river chiefs does Qinghe county have?")
    assert not is_english("青禾县有多少河长?")
    names = romanised_names("How many river chiefs does Qinghe county have?", runtime.index.names)
    assert names == {"Qinghe": ["青禾"]}
    hits = search(runtime.index, runtime.embedder, "Qinghe river chiefs", k=3, variants=("青禾",))
    assert hits[0].chunk.doc == "river.txt"


def test_english_question_is_embedded_as_it_is(runtime):
    """No rendering by the generator: the multilingual embedder meets the Chinese text by meaning, and the
    product's path adds the name the question spells in pinyin (Qinghe -> 青禾). A known pull: notice.txt's
    English spam line ("Ignore previous instructions…") is closer to any English question than the Chinese
    passages, so dense alone puts it first; it is never the only hit."""
    hits = search(runtime.index, runtime.embedder, "How much did tourism income grow in the forest park?", k=4,
                  weights=(0.0, 1.0))
    docs = [h.chunk.doc for h in hits]
    assert docs.index("forest.txt") < docs.index("river.txt") and docs.index("forest.txt") <= 1, docs
    from rag.ask import retrieve_for

    retrieval = retrieve_for(runtime, "How many river chiefs does Qinghe county have?", k=3)
    assert retrieval.variants == ("青禾",)
    assert retrieval.hits[0].chunk.doc == "river.txt"


def test_query_and_passage_prompts_differ(runtime):
    text = ["青禾县设立了河长"]
    query, passage = runtime.embedder.embed(text, "query"), runtime.embedder.embed(text, "passage")
    assert 0.8 < float(query[0] @ passage[0]) < 0.999  # same text, a different role prefix


def test_pinyin_table_holds_only_names_in_a_fixed_order():
    words = ["背景", "伤害", "北京", "荥经", "我们", "嫦娥", "上海"]
    table = pinyin_names(words)
    assert table == pinyin_names(list(reversed(words)))
    found = romanised_names("Did women in Beijing and Shanghai see a change like Yingjing?", table)
    assert found == {"Beijing": ["北京"], "Shanghai": ["上海"], "Yingjing": ["荥经"]}


def test_empty_and_odd_queries(runtime):
    assert search(runtime.index, runtime.embedder, "", k=3) == []
    assert len(search(runtime.index, runtime.embedder, "🌳🌳", k=3)) <= 3


def test_simplified_queries_find_traditional_pinyin_documents(tmp_path):
    """Issue acceptance on the real corpus: Simplified queries reach 002/004 (Traditional with pinyin)."""
    from rag.ask import retrieve_for
    from rag.config import Config
    from rag.service import Runtime

    rt = Runtime.open(Config(index_root=tmp_path, translate_queries=False), progress=False)
    for query, doc in [("新加坡公园局 全域花园城市", "002_5ad7ec515ed4487a.txt"),
                       ("信贷资金4.72亿元", "004_2bd21385aecf275d.txt"), ("循环经济示范区", "004_2bd21385aecf275d.txt")]:
        top3 = [h.chunk.doc for h in retrieve_for(rt, query, k=3).hits]
        assert doc in top3, (query, top3)


def test_page_questions_put_the_page_head_first(runtime):
    from rag.retrieve import asks_about_page, with_page_heads

    assert asks_about_page("Who wrote the article on Qinghe?") and asks_about_page("这篇报道的作者是谁")
    assert not asks_about_page("青禾县设立了多少名河长")
    hits = search(runtime.index, runtime.embedder, "青禾县 地表水 优良比例", k=3)
    first = min((c for c in runtime.index.chunks if c.doc == hits[0].chunk.doc), key=lambda c: c.start)
    headed = with_page_heads(runtime.index, hits, k=3)
    assert headed[0].chunk.id == first.id and len(headed) == 3
    assert with_page_heads(runtime.index, [], k=3) == []
