"""The answering path end to end with the real 0.5B model on the fixture corpus."""

from dataclasses import replace

from rag.ask import (
    after_generating,
    alternative_parts,
    answer,
    answer_json,
    before_generating,
    build_messages,
    echoed_held,
    gather,
    meaning_between,
    paired_parts,
    states_kind,
    sub_questions,
    subject_names,
    with_english_figures,
    written_as_one,
)
from rag.chunk import Chunk
from rag.cite import Evidence, Verified, numbers_in, strip_markers, unsupported_numbers, verify_answer
from rag.clean import normalize
from rag.decide import holds_kind, holds_year, renamed_subject, word_weights
from rag.load import read_raw
from rag.patterns import DATE
from rag.question import analyse, asked_measure, in_asked_letters, parallel, question_lang


def raw_of(runtime, doc):
    return (runtime.cfg.corpus / doc).read_text(encoding="utf-8")


def assert_cited_and_exact(runtime, result):
    assert not result.refused and result.citations
    assert "[1]" in result.answer
    for c in result.citations:
        assert raw_of(runtime, c.doc)[c.start:c.end] == c.quote
    cited = "".join(c.quote for c in result.citations)
    assert numbers_in(strip_markers(result.answer)) <= numbers_in(cited)


def test_cited_answer(answer_runtime):
    runtime = answer_runtime
    result = answer(runtime, "青禾县设立了多少名河长？")
    assert_cited_and_exact(runtime, result)
    assert "212" in result.answer
    assert result.citations[0].doc == "river.txt"
    out = answer_json(result)
    assert set(out) >= {"question", "answer", "refused", "citations"} and out["timings"]["total_s"] > 0


def test_traditional_question_gets_traditional_answer(answer_runtime):
    runtime = answer_runtime
    result = answer(runtime, "松嶺市2022年旅遊收入是多少？")
    assert_cited_and_exact(runtime, result)
    assert result.lang == "zh-Hant" and "4.2" in result.answer


def test_refusal_when_documents_do_not_say(answer_runtime):
    runtime = answer_runtime
    result = answer(runtime, "青禾县2019年的地表水优良比例是多少？")
    assert result.refused and result.reason
    assert answer(runtime, "What is the population of Mars?").refused


def test_injected_instruction_is_not_followed(answer_runtime):
    runtime = answer_runtime
    result = answer(runtime, "城东新区设置了多少个智能回收站？")
    assert "HACKED" not in result.answer.upper()
    if not result.refused:
        assert "300" in result.answer


def test_english_prompts_read_chinese_scaled_figures_aloud():
    source = "人口超过500万的都市区，减持了2.3亿美元，GDP43214.85亿元，增长6.4%，12,000人"
    shown = with_english_figures(source)
    assert "超过 5 million 的" in shown and "减持了 230 million 美元" in shown
    assert "GDP 4,321.485 billion 元" in shown
    assert "增长6.4%" in shown and "12,000人" in shown
    # The reading is the source's own value: an answer copying it is held, a misreading is not.
    assert unsupported_numbers("it exceeds 5 million people", source) == set()
    assert unsupported_numbers("it exceeds 500,000 people", source) == {500000.0}
    assert unsupported_numbers("reduced by 230 million dollars", source) == set()


def test_question_helpers():
    assert question_lang("How many?") == "en" or question_lang("How many river chiefs are there?") == "en"
    assert question_lang("設立了多少名河長") == "zh-Hant"
    assert analyse("how many trees were planted?").asks == "figure" and analyse("种了多少棵树").asks == "figure"
    assert analyse("如何改善空气质量").asks == "other" and analyse("大会什么时候举办？").asks == "date"
    assert analyse("冠军是谁？").asks == "person" and analyse("When did it open?").asks == "date"
    assert analyse("哪一年建成？").asks == "date" and analyse("建了多少年？").asks == "figure"


def test_paired_question_is_split_per_place():
    assert sub_questions("松嶺市和青禾縣在綠化方面分別新栽了多少株?") == [
        ("松岭市", "松岭市在绿化方面新栽了多少株?"), ("青禾县", "青禾县在绿化方面新栽了多少株?")]
    assert sub_questions("成都和首都的天气都好吗?") == []  # 都 is no "each" (成都, 首都)
    assert [p.question for p in sub_questions("甲县2017年以来签约的项目数,和乙区新增的企业数,各是多少?")] == [
        "甲县2017年以来签约的项目数多少?", "乙区新增的企业数多少?"]
    assert subject_names("生态城") == {"生态城": True} and subject_names("江源区") == {"江源": True}
    assert subject_names("乙区新增的企业数") == {}
    assert sub_questions("甲县和乙县的合作项目是什么?") == []  # no "each": one joint fact
    assert sub_questions("") == [] and sub_questions("🙂和🙂各自") == []


def test_a_question_about_two_things_is_asked_once_per_thing():
    def parts(text: str) -> list[str]:
        return [p.question for p in alternative_parts(analyse(text))]

    assert parts("2031年腾讯和阿里巴巴的全年营收") == ["2031年腾讯的全年营收", "2031年阿里巴巴的全年营收"]
    assert parts("那场比赛的时间和地点？") == ["那场比赛的时间?", "那场比赛的地点?"]
    assert parts("女子和男子500米速度滑冰金牌分别是谁") == ["女子500米速度滑冰金牌是谁", "男子500米速度滑冰金牌是谁"]
    assert parts("2031年谁当选甲市市长和乙市市长？") == ["2031年谁当选甲市市长?", "2031年谁当选乙市市长?"]
    assert parts("北京市长和上海市长是谁") == ["北京市长是谁", "上海市长是谁"]
    assert parts("中华人民共和国成立于哪一年？") == [] and parts("和平区的人口是多少？") == []
    assert parts("") == [] and parts("和") == []


def test_what_both_sides_share_stays_in_each_half():
    """分别 over parallel words: the time before the pair and the measure after it belong to both halves."""
    def parts(text: str, *chunk_texts: str) -> list[str]:
        chunks = [Chunk(str(i), "d.txt", "", 0, len(t), t, t) for i, t in enumerate(chunk_texts)]
        return [p.question for p in paired_parts(analyse(text), chunks)]

    assert parts("2031年一季度中国和美国的经济增长率分别是多少？") == [
        "2031年一季度中国的经济增长率是多少?", "2031年一季度美国的经济增长率是多少?"]
    assert parts("本届百花奖最佳影片奖和最佳导演奖分别是什么") == ["本届百花奖最佳影片奖是什么", "本届百花奖最佳导演奖是什么"]
    assert parts("深圳大学2031年和2032年分别录取了多少名本科生？") == [
        "深圳大学2031年录取了多少名本科生?", "深圳大学2032年录取了多少名本科生?"]
    # 分别 asks for each even where the pages write the pair joined; without it, the joined pair is one thing
    joined = ("男单和女单决赛今天举行。", "男单和女单冠军揭晓。")
    assert parts("U14组男单和女单冠军分别是谁？", *joined) == ["u14组男单冠军是谁?", "u14组女单冠军是谁?"]
    assert parts("U14组男单和女单冠军是谁？", *joined) == []
    # two places stay whole clauses (a suffix jieba cuts off, 青禾 县, is not lost)
    assert parts("松嶺市和青禾縣在綠化方面分別新栽了多少株?") == ["松岭市在绿化方面新栽了多少株?", "青禾县在绿化方面新栽了多少株?"]
    assert parallel("中国", "美国") and parallel("2031年", "2032年") and not parallel("建设用地", "常德经开区")


def test_a_half_question_keeps_the_askers_letters():
    """Halves are cut from the folded question (u14组); the model copies them, so they get U14组 back."""
    asked = "2031年Ｇ20峰会和U14组比赛的时间分别是什么时候？"
    assert in_asked_letters("2031年g20峰会的时间是什么时候?", asked) == "2031年G20峰会的时间是什么时候?"
    assert in_asked_letters("u14组比赛的时间", asked) == "U14组比赛的时间"
    assert in_asked_letters("iphone和ipad", "iPhone和iPad哪个贵") == "iPhone和iPad"
    assert in_asked_letters("gdp增长", "国内生产总值增长") == "gdp增长"  # a word the asker never wrote stays
    assert in_asked_letters("", "") == "" and in_asked_letters("u14", "") == "u14"


def test_a_title_joined_by_a_conjunction_is_one_thing():
    """《远山与归人》 is one film: the collection writes its sides joined, so it is not asked in halves."""
    def chunks(*texts: str) -> list[Chunk]:
        return [Chunk(str(i), "d.txt", "", 0, len(t), t, t) for i, t in enumerate(texts)]

    film = chunks("《远山与归人》定档五月。", "远山与归人的导演是王一。", "远山之外，归人未归。")
    assert written_as_one(film, ("远山", "归人"))
    rivals = chunks("腾讯和阿里巴巴发布财报。", "腾讯营收增长，阿里巴巴营收下降。", "阿里巴巴与腾讯竞争。")
    assert not written_as_one(rivals, ("腾讯", "阿里巴巴"))
    assert not written_as_one(film, ("远山",)) and not written_as_one([], ("远山", "归人"))


def test_asked_measure_must_be_in_the_best_evidence():
    # people are counted with 人, 名 or 位 alike: one canonical measure
    assert asked_measure("有几个人受了处分?") == asked_measure("有几名干部?") == "位"
    assert asked_measure("占全市多大比例?") == "%"
    assert asked_measure("哪几种水?") == "" and asked_measure("排第几名?") == ""
    share_only = "有机鱼认证产品数占全市81%"
    assert holds_kind(analyse("有机鱼认证产品占多大比例?"), share_only)
    assert not holds_kind(analyse("有机鱼认证产品占多大比例?"), "有机鱼认证产品有12个")
    assert not holds_kind(analyse("大会什么时候举办?"), "大会在上海举办")
    assert holds_kind(analyse("大会什么时候举办?"), "大会于7月6日在上海举办")


def test_a_bare_topic_naming_a_quantity_asks_for_a_figure():
    """News readers search "2022年全国棉花产量": no interrogative, and the head noun is a quantity. An
    answer that repeats the question's year and a citation marker states no figure of its own."""
    assert analyse("2022年全国棉花产量").asks == "figure" and analyse("北京冬奥会澳大利亚运动员数量").asks == "figure"
    assert analyse("什么是出生率").asks == "other" and analyse("本次活动的主办单位").asks == "other"
    assert analyse("不计任何补贴的全年营收").asks == "figure"  # 任何 asks nothing; 何时 does
    assert analyse("大会何时举办").asks == "date"
    assert analyse("What rates does the plan keep at 100%?").asks == "other"  # which rates, not a rate
    topic = analyse("2023春运首日旅客发送量")
    assert not states_kind(topic, "2023年春运首日旅客发送量预计会有较大幅度增长[1].")
    assert states_kind(topic, "2023年春运首日旅客发送量为3474万人次[1]。")
    # a date the answer adds is when, not how many; a question counting years is answered by one
    athletes = analyse("北京冬奥会白石国运动员数量")
    assert not states_kind(athletes, "白石国运动员在2022年北京冬奥会期间当选委员会主席[1]。")
    assert not states_kind(athletes, "白石国代表团于2月4日抵达[1]。")
    assert states_kind(athletes, "2022年2月4日，白石国派出44名运动员[1]。")
    assert states_kind(analyse("白石医院是多少年前建的？"), "白石医院约140年前建成[1]。")
    assert states_kind(analyse("白石镇建镇多少年了？"), "白石镇建于1950年[1]。")


def test_a_share_does_not_answer_a_question_that_counts():
    """"多少个" counts by its measure word: a share of a whole (占全市81%) is another fact. A question about
    a share, or one naming no measure, is answered by one."""
    counted = analyse("白石镇的绿色认证产品有多少个？")
    assert counted.measure == "个"
    assert not states_kind(counted, "白石镇绿色认证产品数占全市81%[1]。")
    assert not states_kind(counted, "白石镇绿色认证产品占比超过六成，达62.5 percent[1]。")
    assert states_kind(counted, "白石镇有绿色认证产品12个，占全市81%[1]。")
    assert states_kind(analyse("白石镇绿色认证产品占全市的比例是多少？"), "占全市81%[1]。")
    assert states_kind(analyse("白石镇的出生率是多少？"), "白石镇出生率为7.52‰[1]。")


def test_an_answer_to_who_or_where_names_someone_or_somewhere():
    """A where-question answered with when (将在8月26日至9月11日进行) states no place, and a who-question
    answered with the question's own words and a date names no one; a name or a place noun of the
    answer's own does. Traditional answers are read in their Simplified form."""
    where = analyse("2025年白石镇龙舟赛在哪举办？")
    assert where.asks == "place"
    assert not states_kind(where, "2025年白石镇龙舟赛将在8月26日至9月11日进行[1]。")
    assert states_kind(where, "2025年白石镇龙舟赛在青禾湖畔举办[1]。")
    who = analyse("白石镇龙舟赛的冠军是谁？")
    assert not states_kind(who, "白石镇龙舟赛的冠军将于5月8日揭晓[1]。")
    assert states_kind(who, "白石镇龙舟赛的冠军是张伟[1]。")
    assert states_kind(analyse("白石鎮龍舟賽在哪裡舉辦？"), "白石鎮龍舟賽在青禾湖畔舉辦[1]。")


def test_a_bare_topic_naming_a_time_asks_for_a_date():
    """"白石镇茶博会开幕时间" asks when, as 何时 would: an answer giving how long it lasts states no date.
    A duration (持续时间) is a figure; a question with an interrogative keeps its own kind."""
    topic = analyse("白石镇茶博会开幕时间")
    assert topic.asks == "date" and analyse("白石镇茶博会的时间？").asks == "date"
    assert not states_kind(topic, "白石镇茶博会开幕时间是4天[1]。")
    assert states_kind(topic, "白石镇茶博会于5月8日开幕[1]。")
    assert analyse("白石镇停电的持续时间").asks == "figure"
    assert analyse("白石镇茶博会开幕时间是哪一年？").asks == "date" and analyse("谁确定了开幕时间").asks == "person"


def test_the_year_asked_is_the_year_of_the_cited_context():
    """2021年香港GDP answered from a sentence about the 1960s is about another time; news that writes
    今年 for the year may mean it; a question without a year asks for none."""
    question = analyse("2021年香港GDP增长了多少？")
    assert not holds_year(question, "上世纪60年代到80年代,香港经济腾飞,gdp年均增长速度近9%")
    assert holds_year(question, "香港2021年gdp同比增长6.4%") and holds_year(question, "今年香港gdp增长6.4%")
    assert not holds_year(question, "2012年香港gdp增长1.7%")  # another year holding the same digits
    assert holds_year(analyse("香港GDP增长了多少？"), "上世纪60年代")


def test_a_context_naming_the_asked_thing_otherwise_is_about_another():
    """北京冬奥会 asked, 长野冬奥会 or 温哥华2010年冬奥会 cited: another games. The asked name present (even
    without its suffix, 荥经 for 荥经县), or the noun with no name before it, may be about the one asked."""
    games = analyse("北京冬奥会双人滑金牌得主是谁？")
    assert renamed_subject(games, "长野冬奥会上申雪和赵宏博获得铜牌") == "北京->长野"
    assert renamed_subject(games, "温哥华2010年冬奥会双人滑金牌得主是申雪和赵宏博") == "北京->温哥华"
    assert renamed_subject(games, "北京冬奥会双人滑金牌由隋文静、韩聪获得") == ""
    assert renamed_subject(games, "冬奥会双人滑金牌得主是隋文静、韩聪") == ""
    county = analyse("四川荥经县空气质量怎么样？")
    assert renamed_subject(county, "雅安市荥经县2023年空气质量优良率达96.4%") == ""
    assert renamed_subject(county, "荥经空气质量优良率达96.4%") == ""
    assert renamed_subject(analyse("空气质量怎么样？"), "雅安市空气质量优良率达90%") == ""


def test_paired_question_answered_for_both_places(answer_runtime):
    runtime = answer_runtime
    result = answer(runtime, "松嶺市和青禾县分别投入或收入了多少亿元?")
    assert_cited_and_exact(runtime, result)
    assert {c.doc for c in result.citations} == {"forest.txt", "river.txt"}
    assert "4.2" in result.answer and "3.6" in result.answer


def test_english_question_gets_english_answer_quoting_chinese(answer_runtime):
    runtime = answer_runtime
    result = answer(runtime, "How many river chiefs did 青禾县 appoint?")
    assert_cited_and_exact(runtime, result)
    assert result.lang == "en" and "212" in result.answer
    assert "河长212名" in result.answer  # the Chinese it rests on, quoted


def test_refusal_when_the_figure_belongs_to_another_place(answer_runtime):
    runtime = answer_runtime
    """城东新区 has 300 recycling stations; 松岭市 (named in another document) has none reported."""
    result = answer(runtime, "松岭市设置了多少个智能回收站？")
    assert result.refused, result.answer
    assert all(e.doc != "notice.txt" for e in result.evidence)


def test_author_and_date_questions_read_the_page_head(answer_runtime):
    runtime = answer_runtime
    result = answer(runtime, "讲清淤河道128公里的那篇报道,发布时间是什么？")
    assert result.evidence and result.evidence[0].doc == "river.txt" and result.evidence[0].start < 40


def test_two_questions_in_one_are_split_only_when_each_names_its_place():
    from rag.ask import two_questions
    from rag.attribute import question_names

    parts = two_questions("荥经县的古树有多少棵？江源区新增了多少户企业？", question_names)
    assert [p.question for p in parts] == ["荥经县的古树有多少棵？", "江源区新增了多少户企业？"]
    assert two_questions("荥经县的古树有多少棵,江源区呢", question_names) == []
    assert two_questions("荥经县的古树有多少棵？它们建了档案吗？", question_names) == []  # the second leans on the first
    assert two_questions("青禾县设立了多少名河长？", question_names) == []
    assert two_questions("", question_names) == [] and two_questions("🙂?🙂?", question_names) == []


def test_a_second_question_naming_nothing_asks_about_the_firsts_subject():
    from rag.ask import two_questions
    from rag.attribute import question_names

    parts = two_questions("周立波逃税多少钱，被罚了多少钱", question_names)
    assert [p.question for p in parts] == ["周立波逃税多少钱？", "周立波被罚了多少钱？"]
    parts = two_questions("《青禾往事》是什么类型的电影？它的导演是谁？", question_names)
    assert [p.question for p in parts] == ["《青禾往事》是什么类型的电影？", "《青禾往事》的导演是谁？"]
    assert two_questions("How many trees were planted, and what did it cost?", question_names) == []  # English: whole


def test_english_place_names_are_sure_only_with_a_place_noun(runtime):
    from rag.ask import asked_names

    assert asked_names(runtime, "How many river chiefs does Qinghe county have?", "en") == {"青禾": True}
    assert asked_names(runtime, "How many river chiefs does Qinghe have?", "en") == {"青禾": False}
    assert asked_names(runtime, "青禾县设立了多少名河长？", "zh") == {"青禾": True}
    assert asked_names(runtime, "What is the population of Mars?", "en") == {}


# The five phrasings of the product's own example.
MISSION = ["荥经县如何改善空气质量？", "荥经县是怎样改善空气质量的？", "滎經縣怎樣改善空氣質量？",
           "How did 荥经 improve air quality?", "How did Yingjing county improve its air?"]


def test_the_mission_example_cites_the_air_quality_sentence(project_corpus, tmp_path_factory):
    """Phrasings of the product's own example, on the default corpus with the default generator:
    each must cite the 96.4% air-quality sentence (not the water-quality one beside it)."""
    from conftest import PRODUCT_MODEL

    from rag.config import Config
    from rag.service import Runtime

    rt = Runtime.open(Config(corpus=project_corpus, index_root=tmp_path_factory.mktemp("project-index"),
                             generator=PRODUCT_MODEL, translator=PRODUCT_MODEL), progress=False)
    for question in MISSION:
        result = answer(rt, question)
        assert not result.refused, (question, result.reason)
        assert any("96.4%" in c.quote for c in result.citations), (question, result.answer)
        for c in result.citations:
            assert raw_of(rt, c.doc)[c.start:c.end] == c.quote


def test_the_generator_tells_sources_that_answer_from_sources_that_do_not(answer_runtime):
    """The 1.5B asked apart (rag.generate.yes_probability): a sentence about another subject, another kind
    of accident or another quality does not answer (below the plain yes/no line); the sentence that does,
    does."""
    from conftest import PRODUCT_MODEL

    from rag.generate import yes_probability

    llm = answer_runtime.llm(PRODUCT_MODEL, role="confirm")

    def answers(question: str, source: str) -> bool:
        return yes_probability(llm, question, [source])[0] >= 0.5

    accident = "据报道,青禾县发生一起交通事故,一辆巴士坠入深谷,已造成10人死亡。"
    assert not answers("白石镇的新任镇长是谁？", "苹果首席执行官蒂姆•库克打开了商店的门。")
    assert answers("白石镇的新任镇长是谁？", "白石镇召开干部大会,宣布李明任白石镇镇长。")
    assert not answers("青禾县寺庙踩踏事故死亡人数", accident)
    assert answers("青禾县交通事故死亡人数", accident)
    air = "青禾县推进多污染物协同减排,2023年空气质量优良率达96.4%。"
    water = "青禾县创新河长制,出境断面水质常年保持地表水Ⅱ类以上。"
    assert answers("How did Qinghe improve its air quality?", air)
    assert not answers("How did Qinghe improve its air quality?", water)


def test_an_answer_stands_on_its_other_checks_when_the_confirming_model_is_missing(runtime, caplog):
    """A collection answered with --model 0.5b on a machine without the 1.5B: no confirmation, a warning,
    no error; with confirm_with '' nothing is asked at all."""
    from types import SimpleNamespace

    from rag.ask import confidence

    question = analyse("青禾县设立了多少名河长？")
    missing = SimpleNamespace(cfg=replace(runtime.cfg, confirm_with="no-such-model"), llm=runtime.llm)
    timings: dict[str, float] = {}
    with caplog.at_level("WARNING", logger="rag"):
        assert confidence(missing, question, ["设立河长212名。"], timings) is None
    assert "no-such-model" in caplog.text and "confirm_s" not in timings
    assert confidence(runtime, question, ["设立河长212名。"], timings) is None and not timings  # confirm_with ''


def test_an_answer_restating_the_question_about_another_sentence_is_dropped(runtime):
    """The source gives 青禾县's 地表水优良比例 92.5%. Called 松岭市's 湿地修复比例 the question asks for (words
    of another page), the figure is held by its sentence but what the answer repeats from the question is not."""
    raw = read_raw(runtime.cfg.corpus / "river.txt")
    quote = "全县地表水优良比例达到92.5%。"
    start = raw.index(quote)
    said = Evidence("river.txt", "青禾县推进河道治理", start, start + len(quote), quote, normalize(quote).text, 1.0)
    for question, answer_text, kept in (("青禾县地表水优良比例是多少？", "青禾县地表水优良比例达到92.5%[1]。", True),
                                        ("松岭市湿地修复比例是多少？", "松岭市湿地修复比例达到92.5%[1]。", False)):
        g = gather(runtime, question)
        echo = echoed_held(runtime, g.weights, g.question.names)
        assert verify_answer(answer_text, [said], 0.5, question).citations  # what it checked before
        verified = verify_answer(answer_text, [said], 0.5, question, echo=echo, min_echo=0.55)
        assert bool(verified.citations) == kept, (question, echo(normalize(answer_text).text, [said]))


def test_a_quote_in_place_of_an_answer_is_about_the_year_asked(runtime):
    """When the model wrote from a side sentence, the best evidence may be quoted instead; not when that
    evidence is about another year than the one asked (the page writes 2021年以来, not 2019)."""
    other = next(e for e in gather(runtime, "松岭市2022年接待游客多少人次？").evidence if "86万" in e.norm)
    for question, quoted in (("2021年以来青禾县累计投入河道治理资金多少？", True),
                             ("2019年青禾县累计投入河道治理资金多少？", False)):
        g = gather(runtime, question)
        # as complete as a quote needs; the model wrote from a sentence of another page
        g = replace(g, signals=replace(g.signals, coverage=1.0), evidence=[*g.evidence, other])
        draft = f"青禾县累计投入河道治理资金达到86万人次[{len(g.evidence)}]。"
        verified, reason = after_generating(runtime, g, draft, strict=True)
        assert ("quoted the best evidence" in reason) == quoted, (question, reason)
        assert bool(verified.citations) == quoted


def test_a_quote_in_place_of_an_answer_states_the_kind_of_fact_asked(runtime):
    """However much of the question the best evidence holds, it is quoted only when it states what is
    asked: the sentence on the sewage plants gives no date for a question asking when they were built."""
    question = "青禾县什么时候建成污水处理厂？"
    g = gather(runtime, question)
    assert "污水处理厂" in g.evidence[0].quote and not DATE.search(g.evidence[0].quote)
    g = replace(g, signals=replace(g.signals, coverage=1.0))  # as complete as a quote needs
    side = next(i for i, e in enumerate(g.evidence, 1) if "3.6亿元" in e.quote)
    verified, reason = after_generating(runtime, g, f"青禾县在2021年建成了污水处理厂[{side}]。", strict=True)
    assert "something else" in reason and "quoted the best evidence" not in reason, reason
    assert not verified.citations


def test_the_best_evidence_is_quoted_after_a_failed_answer_only_when_the_model_is_nearly_certain(answer_runtime):
    """The model wrote from a side sentence; the best evidence holds too little of the question for the
    coverage rule (quotable). Asked apart, the 1.5B is nearly certain the sentence on river funding answers
    the funding question: it is quoted. It is far from certain that the same sentence names who leads the
    river work: refused. Above a threshold no probability reaches, nothing is quoted."""
    from dataclasses import replace as with_fields

    def after_a_side_draft(rt, question: str) -> tuple[Verified, str]:
        g = gather(rt, question)
        assert "投入河道治理资金" in g.evidence[0].quote
        g = replace(g, signals=replace(g.signals, coverage=0.5))  # below quote_coverage: quotable says no
        side = next(i for i, e in enumerate(g.evidence, 1) if "5万吨" in e.quote)
        return after_generating(rt, g, f"青禾县累计投入资金达到5万吨[{side}]。", strict=True)

    for question, quoted in (("2021年以来青禾县累计投入河道治理资金多少？", True), ("青禾县河道治理的负责人是谁？", False)):
        verified, reason = after_a_side_draft(answer_runtime, question)
        assert ("quoted the best evidence" in reason) == quoted, (question, reason)
        assert bool(verified.citations) == quoted
    never = with_fields(answer_runtime, cfg=with_fields(answer_runtime.cfg, quote_confirm=1.01))
    assert not after_a_side_draft(never, "2021年以来青禾县累计投入河道治理资金多少？")[0].citations


def test_an_english_answer_needs_more_of_the_models_certainty_than_a_chinese_one(answer_runtime):
    """Nothing in the sewage-plant sentence says who designed the plants; an English answer naming a
    designer passes the figure and meaning checks, and the 1.5B asked apart is unsure (between the plain
    yes/no line and `min_confirm_en`): refused. The answer the sentence does give stands."""
    def verdict(rt, question: str, sentence: str) -> str:
        g = gather(rt, question)
        n = next(i for i, e in enumerate(g.evidence, 1) if "污水处理厂4座" in e.quote)
        return after_generating(rt, g, sentence.format(n=n), strict=True)[1]

    unsure = "the model, asked, finds its cited sources do not answer"
    designed = ("Who designed Qinghe's sewage plants?", "The 4 sewage plants were designed by the county [{n}].")
    assert verdict(answer_runtime, *designed) == unsure
    lenient = replace(answer_runtime, cfg=replace(answer_runtime.cfg, min_confirm_en=answer_runtime.cfg.min_confirm))
    assert verdict(lenient, *designed) == ""  # at the Chinese threshold it would stand
    assert verdict(answer_runtime, "How many sewage plants did Qinghe build?", "Qinghe built 4 sewage plants [{n}].") == ""


def test_a_name_no_document_writes_is_refused_before_generating(runtime):
    """The fixture pages never name 华尔街日报: however much else of the question they cover, they cannot say
    who its reporter is. A name they do write, with or without its suffix, is no reason to refuse."""
    absent = gather(runtime, "华尔街日报的记者在青禾县报道了什么？")
    assert "华尔街日报" in absent.signals.absent
    assert "华尔街日报" in before_generating(absent, runtime.cfg, strict=True)
    present = gather(runtime, "青禾县的地表水优良比例是多少？")
    assert present.signals.absent == ()


def test_an_english_sentence_naming_the_asked_place_in_chinese_stays_with_the_sentence_it_means(runtime):
    """"Yingjing county (荥经) cut …" asked as "Yingjing county": the Chinese form is the question's place
    (rag.ask.verify adds the asked names to the question), and to the embedder it must not make the one
    sentence that writes the name (its river's water) look like the one meant."""
    def ev(text: str, start: int) -> Evidence:
        return Evidence("a.txt", "t", start, start + len(text), text, normalize(text).text, 1.0)

    air = ev("大力推进颗粒物、氮氧化物等多污染物协同减排，空气质量优良率持续提升。", 0)
    water = ev("创新河长制，出境断面水质常年保持地表水Ⅱ类以上，青禾河入选美丽河湖优秀案例。", 100)
    check = {"meaning": meaning_between(runtime), "min_meaning": runtime.cfg.min_meaning,
             "recite_margin": runtime.cfg.recite_margin}
    sentence = "Qinghe county (青禾) improved its air by cutting emissions of particulate matter and nitrogen oxides"
    kept = verify_answer(f"{sentence} [1].", [air, water], 0.5, "How did Qinghe county improve its air? 青禾", **check)
    assert [c.quote for c in kept.citations] == [air.quote], kept


def test_a_source_is_shown_after_the_place_it_is_about_where_it_does_not_say():
    question = analyse("荥经县如何改善空气质量？")
    evidence = [Evidence("a.txt", "t", 0, 10, "空气质量优良率达96.4%。", "空气质量优良率达96.4%。", 1.0),
                Evidence("a.txt", "t", 20, 30, "荥经河入选美丽河湖。", "荥经河入选美丽河湖。", 1.0)]
    user = build_messages(question, evidence, ["荥经县", ""])[-1]["content"]
    assert "[1] （荥经县）空气质量优良率达96.4%。\n[2] 荥经河入选美丽河湖。" in user


def test_an_english_sentence_moves_to_the_source_it_means(runtime):
    """The model numbered the wrong source: the sentence naming the halves is [1], the model wrote [2].
    The sentence is cited where it is clearly closer in meaning; a citation already right stays."""
    def ev(text: str) -> Evidence:
        return Evidence("a.txt", "t", 0, len(text), text, normalize(text).text, 1.0)

    halves = ev("该省分为两部分，东半部称为青山，西半部称为白水。")
    harbour = ev("1905年，该省在河口建立了第一个港口。")
    sentence = "The western half of the province was called Baishui"
    check = {"meaning": meaning_between(runtime), "min_meaning": 0.0, "recite_margin": runtime.cfg.recite_margin}
    moved = verify_answer(f"{sentence} [2].", [halves, harbour], 0.5, "What was the western half called?", **check)
    assert [c.quote for c in moved.citations] == [halves.quote] and moved.repaired == 1
    kept = verify_answer(f"{sentence} [1].", [halves, harbour], 0.5, "What was the western half called?", **check)
    assert [c.quote for c in kept.citations] == [halves.quote] and kept.repaired == 0
    unmoved = verify_answer(f"{sentence} [2].", [halves, harbour], 0.5, "What was the western half called?",
                            **{**check, "recite_margin": 1.0})
    assert [c.quote for c in unmoved.citations] == [harbour.quote]


def test_a_word_no_source_holds_weighs_most_only_when_it_names_something():
    """Of a question's words that no chunk holds, a thing asked about (宋仁宗, 有期徒刑) makes a question
    about what the collection never mentions score low; the asker's wording (签了, 帮忙, 一共, 哪家, 定于)
    no source could hold, so it is left out rather than counted as missing."""
    held = {"常德": (5, 100), "项目": (20, 100)}
    weights = word_weights(["常德", "项目", "签了", "帮忙", "一共", "哪家", "定于", "宋仁宗", "有期徒刑", "水果"],
                           lambda w: held.get(w, (0, 100)))
    assert set(weights) == {"常德", "项目", "宋仁宗", "有期徒刑", "水果"}
    assert weights["宋仁宗"] > weights["常德"] > weights["项目"]


def test_a_page_title_names_the_subject_its_sentences_leave_out(tmp_path_factory):
    """A news page names its film in the headline and then writes only 导演张青山…: an answer citing that
    sentence is about the film its page's title names (read without the title, it would be refused as
    about something else)."""
    from rag.config import Config
    from rag.service import Runtime

    corpus = tmp_path_factory.mktemp("film")
    (corpus / "film.txt").write_text(
        "电影《白石湾》幕后故事\n参演本片的演员多为新人,拍摄历时八个月。导演张青山用“恩赐”来形容这次拍摄。\n",
        encoding="utf-8")
    (corpus / "other.txt").write_text("电影《松岭》定档\n电影《松岭》将于明年春节上映。\n", encoding="utf-8")
    rt = Runtime.open(Config(corpus=corpus, index_root=tmp_path_factory.mktemp("film-index"), confirm_with=""),
                      progress=False)
    g = gather(rt, "电影《白石湾》的导演是谁？")
    said = next(e for e in g.evidence if "张青山" in e.quote)
    for title, kept in ((said.title, True), ("", False)):
        verified, reason = after_generating(rt, replace(g, evidence=[replace(said, title=title)]),
                                            "电影《白石湾》的导演是张青山[1]。", strict=True)
        assert bool(verified.citations) == kept, (title, reason)
        assert kept or "something else" in reason, reason


def test_an_answer_to_one_part_says_which_part_the_documents_leave_open():
    from rag.ask import REFUSAL, Answer, Retrieval, joined
    from rag.cite import Citation

    def part(question: str, text: str, refused: bool) -> Answer:
        citations = [] if refused else [Citation(1, "a.txt", "t", 0, 9, "甲校录取320名本科生")]
        return Answer(question, text, refused, citations, "zh", Retrieval([], (), 0.0))

    one = joined("甲校和乙校分别录取了多少名本科生？", [part("甲校录取了多少名本科生？", "甲校录取了320名本科生[1]。", False),
                                           part("乙校录取了多少名本科生？", REFUSAL["zh"], True)], "zh", 0.0)
    assert not one.refused and one.answer == "甲校录取了320名本科生[1]。"  # the answer claims only what it cites
    assert one.unanswered == ["乙校录取了多少名本科生？"] and answer_json(one)["unanswered"] == one.unanswered
    none = joined("甲校和乙校分别录取了多少名本科生？", [part("甲校录取了多少名本科生？", REFUSAL["zh"], True),
                                            part("乙校录取了多少名本科生？", REFUSAL["zh"], True)], "zh", 0.0)
    assert none.refused and none.answer == REFUSAL["zh"] and none.unanswered == []
