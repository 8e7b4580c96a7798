"""Shared text patterns: CJK ranges, figures with their scale and measure words, dates.

Every stage that reads numbers or Chinese characters uses these, so "what counts as a figure" is decided
in one place (a figure the verifier accepts is one the evaluator and the refusal check see too).
"""

from __future__ import annotations

import re

CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_CHAR = re.compile(f"[{CJK}]")
CJK_RUN = re.compile(f"[{CJK}]+")
CJK_SPAN = re.compile(f"[{CJK}]{{2,}}")
LATIN = re.compile(r"[a-zA-Z]")
# A Latin word, with inner hyphens or dots (MIPS, Wi-Fi, v2.0), not glued to letters or digits around it.
LATIN_WORD = re.compile(r"(?<![a-z0-9])[a-z][a-z0-9]*(?:[-.][a-z0-9]+)*[a-z0-9]", re.I)

# A figure: digits with an optional decimal part and a scale or percent sign written after them.
_DIGITS = r"\d+(?:,\d{3})*(?:\.\d+)?"
NUMBER = re.compile(
    f"({_DIGITS})\\s*(%|％|‰|亿|億|万|萬|千|百万|百萬|million|billion|thousand|bn|m\\b|k\\b)?", re.I)
# A share written as a figure (81%, 7.52‰, 30 per cent): it says how much of something, not how many.
SHARE = re.compile(f"{_DIGITS}\\s*(?:%|％|‰|per ?cent\\b|percent\\b)", re.I)
SCALE = {"亿": 1e8, "億": 1e8, "万": 1e4, "萬": 1e4, "千": 1e3, "百万": 1e6, "百萬": 1e6, "million": 1e6,
         "m": 1e6, "billion": 1e9, "bn": 1e9, "thousand": 1e3, "k": 1e3}
CN_SCALE = frozenset("亿億万萬")  # the Chinese scales an English reader misreads (500万 is 5 million)
# Measure words that say what a figure counts: 12个 and 2808棵 are different facts.
MEASURES = set("个個棵株颗顆条條项項处處家所座次年月日天位名人户戶亩畝吨噸元件台辆輛栋棟间間只隻套倍公平米立千克种種批")
DATE_UNITS = frozenset("年月日号")  # a date's parts: a source may write them as 2023-01-03
# Measure words a writer may swap without changing the fact (homophones, 個/个 after t2s).
SAME_MEASURE = {"颗": "棵", "株": "棵", "只": "个", "项": "个", "间": "个", "座": "个", "家": "个", "名": "位", "人": "位"}
CN_DIGITS = "零一二两三四五六七八九十百千万亿"
# Chinese numerals with a measure word (三个, 近千人): a figure without digits.
CN_FIGURE = re.compile(f"[{CN_DIGITS}几]+[余多]?(.)")
_YEAR_DIGITS = r"(?:1[5-9]|20)\d{2}"  # a year written in full, 1500-2099
# A date or time a sentence states: 2023年, 5月4日, 今年, 上周三, 10:30.
DATE = re.compile(r"\d{1,4}\s*[年月日号]|[今去明前]年|[上下本]?(?:周|星期)[一二三四五六日天]|[昨今明前]天|"
                  r"\d{1,2}[:：]\d{2}|[一二三四五六七八九十]+月|[\u4e00-\u9fff]朝|世纪|年代|年间|时期|"
                  r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
                  r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.? \d{1,2}\b|\b" + _YEAR_DIGITS + r"s?\b|"
                  r"\b\d{1,2}(?:st|nd|rd|th)[- ]century\b",
                  re.I)
# A calendar date written with its units (2022年, 2022年2月4日, 3月4日): when it is, not how many.
CALENDAR = re.compile(r"(?<!\d)(?:" + _YEAR_DIGITS + r"\s*年(?:\d{1,2}\s*月(?:\d{1,2}\s*[日号])?)?|\d{1,2}\s*月\d{1,2}\s*[日号])")
# A year written in full (2021, 2021年), and the words news writes for a year it does not spell out.
YEAR = re.compile(r"(?<!\d)" + _YEAR_DIGITS + r"(?!\d)")
RELATIVE_YEAR = re.compile(r"[今去明前本同当]年|年内|年初|年底")
# Administrative suffixes a place is written with or without (荥经 / 荥经县).
PLACE_SUFFIX = "省市县区镇乡州村"
CLAUSE_MARKS = "，,；;"  # what ends a clause inside a sentence: the verifier and the briefing cut claims there
