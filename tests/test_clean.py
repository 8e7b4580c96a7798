import unicodedata

import opencc
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.clean import _fold_char, normalize, sentence_spans

T2S = opencc.OpenCC("t2s")


def test_traditional_with_pinyin_becomes_plain_simplified():
    n = normalize("生態(tài)城濱海新區(qū)")
    assert n.text == "生态城滨海新区"


def test_offsets_point_back_to_raw():
    raw = "【字体:大 中 小】\n松嶺(lǐng)市收入4.2億元。"
    n = normalize(raw)
    i = n.text.index("4.2亿元")
    a, b = n.raw_span(i, i + len("4.2亿元"))
    assert raw[a:b] == "4.2億元"


def test_real_parentheses_survive():
    assert "(市)" in normalize("崇州市等15个县(市)为试点").text
    assert "(gdp)" in normalize("地区生产总值(GDP)增长").text


def test_noise_classes_removed():
    raw = ("您的位置: 首页 >业务信息>动态\n开云真人 官网\n吉 林 城 乡 网\n(資料圖片僅供參考)\n"
           "正文第一句。Copyright©2022 某某网 版权所有 京ICP备000001号")
    text = normalize(raw).text
    for noise in ("您的位置", "开云", "吉 林", "资料图片", "copyright", "icp"):
        assert noise not in text
    assert "正文第一句。" in text


def test_encoding_debris_and_masks_removed():
    assert normalize("深学笃用**生态文明思想").text == "深学笃用生态文明思想"
    assert "\ufffd" not in normalize("吉林\ufffd\ufffd日报").text


def test_edge_strings():
    assert normalize("").text == ""
    assert normalize("   \n\t ").text == ""
    emoji = normalize("🌳🌳 古树2808棵 🌳")
    assert "2808" in emoji.text and "🌳" in emoji.text
    mixed = normalize("How did 滎經 improve PM2.5?")
    assert mixed.text == "how did 荥经 improve pm2.5?"


def test_sentence_spans_split_on_chinese_enders():
    text = "第一句。第二句!第三句；\n第四句"
    assert [text[a:b] for a, b in sentence_spans(text)] == ["第一句。", "第二句!", "第三句；", "第四句"]


NOISY = st.lists(st.one_of(
    st.sampled_from(["生態(tài)", "區(qū)", "**", "\ufffd", "?", "【字体:大 中 小】", "分享到:", " ", "\n", "。",
                     "Copyright©", "吉 林 城 乡 网", "4.72億元", "(資料圖片僅供參考)", "開云真人 官网", "🌳", "Ａ１"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6),
), max_size=30).map("".join)


@given(NOISY)
@settings(max_examples=300, deadline=None)
def test_offset_map_property(raw):
    n = normalize(raw)
    assert len(n.text) == len(n.starts) == len(n.ends)
    last = -1
    for i, ch in enumerate(n.text):
        a, b = n.starts[i], n.ends[i]
        assert 0 <= a < b <= len(raw)
        assert a >= last  # monotone: spans map back in order
        last = a
        if not ch.isspace():
            source = raw[a:b]
            assert ch in T2S.convert("".join(_fold_char(c) for c in source)) or ch in source
    if n.text:
        a, b = n.raw_span(0, len(n.text))
        assert raw[a:b]  # the whole normalised text maps to a real raw slice


def test_furniture_words_inside_body_sentences_are_kept():
    """News sentences may say 主办单位, 责任编辑, 相关信息 or 彩票: only a line of their own is furniture."""
    body = ["本次活动的主办单位是市体育局，承办单位为市马拉松协会。",
            "据相关信息显示，该项目已于去年开工。",
            "他曾任该报责任编辑，后调任新闻部主任。",
            "今年体育彩票销量同比增长12%，公益金用于全民健身。"]
    for sentence in body:
        assert normalize(sentence).text == unicodedata.normalize("NFKC", sentence)
    page = "正文第一句。\n责任编辑：王五\n主办单位：某市人民政府 技术支持：某公司\n开云体育官网 注册入口\n"
    assert normalize(page).text == "正文第一句。"
