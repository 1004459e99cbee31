"""The mapped record is re-read for line numbers only when there are findings; nothing else changes.

Each pack sample (valid and invalid) runs through the pipeline steps twice: as they are, and
with the record re-read right after mapping (as every record was before). Problems with their
lines, the kept standard bytes and every pack's outbound rendering must be the same.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import GatewayError
from gateway.mapping import load_pack
from gateway.model import InboundRecord, sha256_hex
from gateway.pipeline import Context, MapToStandard, Parse, Rejected, Rules, ValidateStandard
from gateway.xmlsafe import DEFAULT_MAX_BYTES

PACKS = ["police", "procuratorate", "court", "justice"]
SAMPLES = [(name, f) for name in PACKS for kind in ("valid", "invalid")
           for f in sorted((load_pack(name).samples / kind).glob("*.xml"))]


def _reread(ctx: Context) -> None:
    ctx.canonical_with_lines()


def _run(name: str, body: bytes, *, eager: bool) -> tuple[Context, bool]:
    pack = load_pack(name)
    ctx = Context(InboundRecord(name, pack.agency, body), "m", sha256_hex(body), "test", pack)
    steps = [Parse(DEFAULT_MAX_BYTES), MapToStandard(), ValidateStandard(["1"]), Rules()]
    if eager:
        steps.insert(2, _reread)  # type: ignore[arg-type]
    try:
        for step in steps:
            step(ctx)
    except Rejected:
        return ctx, True
    return ctx, False


IDS = [f"{n}/{f.parent.name}/{f.name}" for n, f in SAMPLES]


@pytest.mark.parametrize(("name", "sample"), SAMPLES, ids=IDS)
def test_same_findings_lines_and_outputs_as_reading_back_every_record(name: str, sample: Path) -> None:
    body = sample.read_bytes()
    lazy, lazy_blocked = _run(name, body, eager=False)
    eager, eager_blocked = _run(name, body, eager=True)
    assert lazy_blocked == eager_blocked
    assert [p.as_dict() for p in lazy.problems] == [p.as_dict() for p in eager.problems]
    assert all(p.line for p in lazy.problems if p.rule.startswith(("standard.schema", "ID-", "CODE-")))
    assert lazy.canonical_bytes == eager.canonical_bytes
    if lazy_blocked or lazy.canonical is None:
        return
    for out in PACKS:
        try:
            expected = load_pack(out).from_standard(eager.canonical)  # type: ignore[arg-type]
        except GatewayError as e:
            with pytest.raises(type(e)):
                load_pack(out).from_standard(lazy.canonical)
            continue
        assert load_pack(out).from_standard(lazy.canonical) == expected, out


def test_a_clean_record_is_not_read_back() -> None:
    pack = load_pack("police")
    body = (pack.samples / "valid" / "02-transfer-for-prosecution.xml").read_bytes()
    ctx, blocked = _run("police", body, eager=False)
    assert not blocked and not ctx.problems and ctx.lines_pending
