"""The console's one message catalogue (gateway/api/console/messages.json) against its files: every
key has both languages, and every key the page or its scripts ask for is in the catalogue."""

from __future__ import annotations

import json
import re
from pathlib import Path

CONSOLE = Path(__file__).resolve().parent.parent / "gateway" / "api" / "console"
CATALOGUE = json.loads((CONSOLE / "messages.json").read_text(encoding="utf-8"))
FILES = {p.name: p.read_text(encoding="utf-8") for p in CONSOLE.iterdir() if p.suffix in (".js", ".html")}
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")  # Chinese characters and full-width punctuation


PREFIXES = {k.split(".")[0] for k in CATALOGUE}


def used_keys(text: str) -> set[str]:
    """Keys in t("key") / t(`key`) calls and data-i18n* attributes, and quoted strings shaped like a key
    of the catalogue's families (`t(ok ? "a.b" : "a.c")`, lists of keys); a template key must be
    `family.${x}`."""
    keys = set(re.findall(r"\bt\(\s*[\"'`]([^\"'`$]+)[\"'`]", text))
    keys |= set(re.findall(r"data-i18n(?:-title|-placeholder)?=\"([^\"]+)\"", text))
    keys |= {k for k in re.findall(r"\"([a-z-]+\.[\w.-]+)\"", text) if k.split(".")[0] in PREFIXES}
    return keys


def families(text: str) -> set[str]:
    """Families of keys looked up by code: tk("state", ...), t(`detail.${action}`)."""
    fams = set(re.findall(r"\btk\(\s*\"([\w-]+)\"", text))
    return fams | set(re.findall(r"\bt\(\s*`([\w-]+)\.\$\{", text))


def test_every_key_has_chinese_and_english() -> None:
    assert len(CATALOGUE) > 150
    for key, entry in CATALOGUE.items():
        assert set(entry) == {"zh", "en"}, f"messages.json: key {key} has {sorted(entry)}, needs exactly zh and en"
        assert entry["zh"].strip() and entry["en"].strip(), f"messages.json: key {key} lacks a language"
        assert set(re.findall(r"\{\w+\}", entry["zh"])) == set(re.findall(r"\{\w+\}", entry["en"])), \
            f"messages.json: key {key} names different placeholders in zh and en"
        if entry["en"] not in ("—", "SHA-256"):
            assert CJK.search(entry["zh"]), f"messages.json: key {key} has no Chinese in its zh text"
            assert not CJK.search(entry["en"]), f"messages.json: key {key} has Chinese in its en text"


def test_every_key_the_console_uses_is_in_the_catalogue() -> None:
    assert {"index.html", "i18n.js", "console.js", "stats.js"} <= set(FILES)
    for name, text in FILES.items():
        missing = sorted(used_keys(text) - set(CATALOGUE))
        assert not missing, f"gateway/api/console/{name} uses keys not in messages.json: {missing}"
        for fam in families(text):
            assert any(k.startswith(f"{fam}.") for k in CATALOGUE), f"{name}: no key of family {fam} in messages.json"
    assert len(used_keys(FILES["index.html"])) > 60 and len(used_keys(FILES["console.js"])) > 60


def test_every_state_action_and_role_has_its_words() -> None:
    js = FILES["console.js"]
    states = json.loads(re.search(r"const STATES = (\[[^\]]*\]);", js).group(1))  # type: ignore[union-attr]
    # the log's actions, as the gateway's modules write them
    root = CONSOLE.parent.parent.parent
    actions = set()
    for py in [*root.glob("gateway/**/*.py"), *root.glob("adapters/*.py")]:
        src = py.read_text(encoding="utf-8")
        actions |= set(re.findall(r"AuditEvent\(\s*\"([a-z-]+)\"", src))
        actions |= set(re.findall(r"(?:ctx\.log|\.refused)\(\s*\"([a-z-]+)\"", src))
    actions |= {"delivered", "delivery-failed", "dead-lettered", "conformance-run", "refused"}
    assert {"received", "rejected", "replayed"} <= actions
    for code, family in [*((s, "state") for s in states), *((a, "action") for a in actions),
                         *((r, "role") for r in ("operator", "auditor", "police", "procuratorate", "court"))]:
        assert f"{family}.{code}" in CATALOGUE, f"messages.json has no {family}.{code}"


def test_the_page_has_no_text_outside_the_catalogue() -> None:
    """Every element with words in index.html takes them from a key (the words there are only the
    Chinese placeholders shown before the catalogue loads, the language names, and the title)."""
    html = FILES["index.html"]
    for m in re.finditer(r"<(h1|h2|h3|span|button|small|p|th|option|figcaption)([^>]*)>([^<]+)<", html):
        tag, attrs, text = m.groups()
        if text.strip() and "data-i18n" not in attrs and text.strip() not in ("中文", "English"):
            raise AssertionError(f"index.html: <{tag}> says {text.strip()!r} without a data-i18n key")


def test_the_catalogue_holds_no_words_nothing_asks_for() -> None:
    used = set().union(*(used_keys(text) for text in FILES.values()))
    fams = set().union(*(families(text) for text in FILES.values()))
    unused = sorted(k for k in CATALOGUE if k not in used and k.split(".")[0] not in fams)
    assert not unused, f"messages.json has keys no console file uses: {unused}"
