"""A schema checker's message as a plain sentence in Chinese and English.

libxml2 writes `Element '{urn:cn:justice:case-exchange:1}Date': '2026-02-31' is not a valid
value of the atomic type 'xs:date'.` An officer needs "日期“2026-02-31”无效" and the field, and
the Chinese text of a notice must not carry the checker's English. The common cases (pattern,
enumeration, missing or unexpected element, required or unknown attribute, date, date and
time, integer, number, length) are written out in both languages; any other message keeps the
checker's English in the English text and says in Chinese only that the field breaks the
format, pointing to the English text for the detail.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_CLARK = re.compile(r"\{[^}]*\}")
_SUBJECT = re.compile(r"^Element '(?P<el>[^']+)'(?:, attribute '(?P<attr>[^']+)')?: (?P<rest>.*)$", re.S)

_Sentence = Callable[[re.Match[str], str], tuple[str, str]]  # (match, field) -> (zh, en)

_TYPES: dict[str, tuple[str, str]] = {
    "date": ("不是有效的日期（应为真实存在的日期，写作 YYYY-MM-DD）",
             "is not a valid date (a real date, written YYYY-MM-DD)"),
    "dateTime": ("不是有效的日期时间（应写作 YYYY-MM-DDThh:mm:ss，可带时区）",
                 "is not a valid date and time (written YYYY-MM-DDThh:mm:ss, optionally with a time zone)"),
    "time": ("不是有效的时间（应写作 hh:mm:ss）", "is not a valid time (written hh:mm:ss)"),
    "gYear": ("不是有效的年份（应写作 YYYY）", "is not a valid year (written YYYY)"),
    "integer": ("不是整数", "is not a whole number"),
    "int": ("不是整数", "is not a whole number"),
    "long": ("不是整数", "is not a whole number"),
    "nonNegativeInteger": ("不是零或正整数", "is not a whole number of zero or more"),
    "positiveInteger": ("不是正整数", "is not a whole number greater than zero"),
    "decimal": ("不是数字", "is not a number"),
    "boolean": ("不是布尔值（应为 true 或 false）", "is not true or false"),
    "ID": ("不是有效的标识（须以字母开头，且在文件中唯一）", "is not a valid identifier (it must start with a letter "
           "and be unique in the file)"),
    "IDREF": ("没有引用文件中已有的标识", "does not refer to an identifier of the file"),
}


def _names(listed: str) -> str:
    return ", ".join(n.strip() for n in _CLARK.sub("", listed).split(","))


_EMPTY = ("\0 不能为空", "\0: must not be empty")


def _pattern(m: re.Match[str], f: str) -> tuple[str, str]:
    v, p = m["v"], m["p"]
    if not v.strip():
        return _EMPTY
    return (f"{f} 的值“{v}”不符合规定的格式（格式：{p}）", f"{f}: the value '{v}' is not in the required format ({p})")


def _enumeration(m: re.Match[str], f: str) -> tuple[str, str]:
    v, allowed = m["v"], m["set"].replace("'", "")
    return (f"{f} 的值“{v}”不是允许的取值（可选：{allowed}）",
            f"{f}: '{v}' is not one of the allowed values ({allowed})")


def _missing(m: re.Match[str], f: str) -> tuple[str, str]:
    names = _names(m["exp"])
    return (f"{f} 缺少必填项：{names}", f"{f}: a required element is missing: {names}")


def _unexpected(m: re.Match[str], f: str) -> tuple[str, str]:
    if not m["exp"]:
        return (f"{f} 不应出现在此处", f"{f} is not expected here")
    names = _names(m["exp"])
    return (f"{f} 不应出现在此处（此处应为：{names}）", f"{f} is not expected here (expected here: {names})")


def _typed(m: re.Match[str], f: str) -> tuple[str, str]:
    v, kind = m["v"], m["t"].split(":")[-1]
    zh, en = _TYPES.get(kind, (f"不是有效的 {kind} 类型值", f"is not a valid {kind}"))
    return (f"{f} 的值“{v}”{zh}", f"{f}: '{v}' {en}")


def _length(m: re.Match[str], f: str) -> tuple[str, str]:
    n, limit = m["n"], m["m"]
    if n == "0":
        return _EMPTY
    if m["k"] == "minLength":
        return (f"{f} 的值过短：{n} 个字符，至少应有 {limit} 个", f"{f}: the value is too short ({n} characters, "
                                                                f"at least {limit})")
    if m["k"] == "maxLength":
        return (f"{f} 的值过长：{n} 个字符，最多 {limit} 个", f"{f}: the value is too long ({n} characters, "
                                                            f"at most {limit})")
    return (f"{f} 的值应为 {limit} 个字符，实为 {n} 个", f"{f}: the value must be {limit} characters long, not {n}")


def _required_attribute(m: re.Match[str], f: str) -> tuple[str, str]:
    return (f"{f} 缺少必填属性 {m['a']}", f"{f}: the required attribute '{m['a']}' is missing")


def _attribute_not_allowed(m: re.Match[str], f: str) -> tuple[str, str]:
    return (f"{f} 不允许有属性 {m['a']}", f"{f}: the attribute '{m['a']}' is not allowed")


def _empty_value(m: re.Match[str], f: str) -> tuple[str, str]:
    return (f"{f} 的值“{m['v']}”不符合规定", f"{f}: the value '{m['v']}' is not allowed")


_CASES: list[tuple[re.Pattern[str], _Sentence]] = [
    (re.compile(r"\[facet 'pattern'\] The value '(?P<v>.*)' is not accepted by the pattern '(?P<p>.*)'\.$", re.S),
     _pattern),
    (re.compile(r"\[facet 'enumeration'\] The value '(?P<v>.*)' is not an element of the set \{(?P<set>.*)\}\.$",
                re.S), _enumeration),
    (re.compile(r"Missing child element\(s\)\. Expected is (?:one of )?\( (?P<exp>.*) \)\.$", re.S), _missing),
    (re.compile(r"This element is not expected\.(?: Expected is (?:one of )?\( (?P<exp>.*) \)\.)?$", re.S),
     _unexpected),
    (re.compile(r"'(?P<v>.*)' is not a valid value of the (?:atomic|list|union) type '(?P<t>[\w:]+)'\.$", re.S),
     _typed),
    (re.compile(r"\[facet '(?P<k>minLength|maxLength|length)'\] The value (?:'.*' )?has a length of '(?P<n>\d+)'; "
                r"this (?:underruns|exceeds|differs from) the allowed (?:minimum |maximum )?length of '(?P<m>\d+)'\.$",
                re.S), _length),
    (re.compile(r"The attribute '(?P<a>[^']+)' is required but missing\.$"), _required_attribute),
    (re.compile(r"The attribute '(?P<a>[^']+)' is not allowed\.$"), _attribute_not_allowed),
    (re.compile(r"'(?P<v>.*)' is not a valid value of the local (?:atomic|list|union) type\.$", re.S), _empty_value),
]


def plain(message: str) -> tuple[str, str]:
    """(Chinese, English) for one checker message; the English is the checker's own when the
    case is not one of those written out, and the Chinese then says only what and where."""
    text = message.strip()
    subject = _SUBJECT.match(text)
    if subject is None:
        return "不符合格式规定（详细说明见英文信息）", text
    name = _CLARK.sub("", subject["el"])
    attr = subject["attr"] if not subject["rest"].startswith("The attribute") else None  # it names it again
    field = f"{name} 的属性 {attr}" if attr else name
    field_en = f"{name}/@{attr}" if attr else name
    for pattern, sentence in _CASES:
        m = pattern.search(subject["rest"])
        if m is not None:
            zh, en = sentence(m, "\0")
            return zh.replace("\0", field), en.replace("\0", field_en)
    return f"{field} 不符合格式规定（详细说明见英文信息）", f"{field_en}: {_CLARK.sub('', subject['rest'])}"
