"""Defect notices: the gateway's answer to a blocked record, in the standard's `DefectNotice` form.

The sender's outbound mapping turns it into the sender's own legacy format, so an officer reads
what is missing in the system they work in. Checks with no Chinese text of their own (XML,
schema, routing) get a Chinese lead-in by rule family and keep the English detail.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from gateway.mapping import Problem
from gateway.standard import NS, Envelope

_ZH_BY_FAMILY = {
    "xml": "文件不是格式正确的XML，或声明的字符编码与实际不符",
    "legacy": "文件不符合本单位接口格式规范",
    "standard": "记录不符合案件交换标准",
    "route": "无法确定接收单位",
    "mapping": "格式转换失败，请联系系统管理员",
    "gateway": "交换网关处理失败，运维人员已收到告警",
}


def message_zh(p: Problem) -> str:
    return p.message_zh or _ZH_BY_FAMILY.get(p.rule.split(".", 1)[0], "记录未通过检查") + f"：{p.message}"


def _sub(parent: etree._Element, name: str, text: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS}}}{name}")
    el.text = text
    return el


def defect_element(parent: etree._Element, name: str, p: Problem) -> etree._Element:
    """One failed rule as a Defect (notice) or Warning (forwarded record) element."""
    d = etree.SubElement(parent, f"{{{NS}}}{name}")
    _sub(d, "Rule", p.rule)
    _sub(d, "Severity", p.severity)
    # a hint travels inside the messages, so every pack's notice format shows it as it is
    zh, en = message_zh(p), p.message
    _sub(d, "MessageZh", f"{zh.rstrip('。')}。处理建议：{p.hint_zh}" if p.hint_zh else zh)
    _sub(d, "MessageEn", f"{en.rstrip('.')}. What to do: {p.hint_en}" if p.hint_en else en)
    if p.location:
        _sub(d, "Location", p.location)
    if p.line:
        _sub(d, "Line", str(p.line))
    return d


def defect_notice(
    message_id: str,
    receiver: str,
    problems: list[Problem],
    *,
    envelope: Envelope | None = None,
    sender_message_id: str | None = None,
    issued_at: dt.datetime | None = None,
) -> etree._Element:
    root = etree.Element(f"{{{NS}}}DefectNotice", nsmap={None: NS}, version="1.0")
    _sub(root, "OriginalMessageId", message_id)
    if sender_message_id:
        _sub(root, "SenderMessageId", sender_message_id)
    if envelope is not None:
        for name, value in (
            ("CaseNumber", envelope.case_number),
            ("Stage", envelope.stage),
            ("Action", envelope.action),
        ):
            if value:
                _sub(root, name, value)
    _sub(root, "Receiver", receiver)
    when = issued_at or dt.datetime.now(dt.UTC)
    _sub(root, "IssuedAt", when.replace(microsecond=0).isoformat())
    for p in problems:
        defect_element(root, "Defect", p)
    return root


def attach_warnings(record: etree._Element, warnings: list[Problem]) -> None:
    """Replace the record's Warnings with these (an earlier hop's warnings are not this hop's)."""
    for old in list(record.iterchildren(f"{{{NS}}}Warnings")):  # no path to parse, as findall would
        record.remove(old)
    if warnings:
        box = etree.SubElement(record, f"{{{NS}}}Warnings")
        for p in warnings:
            defect_element(box, "Warning", p)
