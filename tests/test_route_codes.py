"""Routes and roles name the standard's codes, and every example configuration routes what its agencies send."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from gateway import cli, standard
from gateway.config import GatewayConfig, load_config, parse_config
from gateway.errors import ConfigError
from gateway.mapping import PackNotFound, load_pack, pack_for_agency
from gateway.packcheck import check_file
from gateway.routing import Router

from .support.config import base_config

ROOT = Path(__file__).resolve().parent.parent


def _error(data: dict[str, object]) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(data, source="gw.yaml")
    return str(e.value)


@pytest.mark.parametrize(("route", "key", "nearest"), [
    ({"stage": "trial", "action": "arrest-decision"}, "routes[0].action", "approve-arrest, refuse-arrest"),
    ({"stage": "prosecution-review", "action": "return-for-supplementary-investigation"}, "routes[0].action",
     "return-supplementary-investigation"),
    ({"stage": "execution", "action": "receipt-of-offender"}, "routes[0].action", "offender-received"),
    ({"stage": "execution", "action": "commutation-ruling"}, "routes[0].action", "ruling"),
    ({"stage": "triall"}, "routes[0].stage", "trial"),
])
def test_a_route_on_a_code_the_standard_lacks_is_refused_with_the_nearest(
        tmp_path: Path, route: dict[str, str], key: str, nearest: str) -> None:
    data = base_config(tmp_path)
    data["routes"] = [{**route, "to": ["PROC"]}]
    msg = _error(data)
    assert msg.startswith("gw.yaml: routes: ") and "would match" in msg
    line = next(x for x in msg.splitlines() if key in x)
    wrong = route.get("action") or route["stage"]
    assert f"“{wrong}”" in line and f"'{wrong}'" in line and nearest in line


def test_an_agency_role_the_standard_lacks_is_refused_with_the_nearest(tmp_path: Path) -> None:
    data = base_config(tmp_path)
    data["agencies"][0]["role"] = "polise"
    msg = _error(data)
    assert "agencies.0.role" in msg and "'polise'" in msg and "nearest: police" in msg


def test_agency_roles_accepted_are_the_standards_list_and_other() -> None:
    from gateway.routecodes import roles
    from gateway.rules import code_list

    field = GatewayConfig.model_fields["agencies"].annotation.__args__[0].model_fields["role"]  # type: ignore[union-attr]
    assert set(field.annotation.__args__) == roles() == {*code_list("agency-roles"), "other"}


def test_check_config_fails_on_the_old_example_routes(tmp_path: Path) -> None:
    text = (ROOT / "deploy" / "example.yaml").read_text(encoding="utf-8")
    path = tmp_path / "old.yaml"
    path.write_text(text.replace("action: offender-received", "action: receipt-of-offender"), encoding="utf-8")
    r = CliRunner().invoke(cli.app, ["check-config", str(path)])
    assert r.exit_code == 2 and "receipt-of-offender" in r.output and "offender-received" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)


def _yaml_blocks(doc: Path) -> list[str]:
    return [b for b in re.findall(r"```ya?ml\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)
            if re.search(r"^agencies:", b, re.M)]


def example_configs() -> list[tuple[str, object]]:
    """Every full configuration the repository shows people: deploy/*.yaml and YAML blocks in the docs."""
    found: list[tuple[str, object]] = [(str(p.relative_to(ROOT)), p) for p in sorted((ROOT / "deploy").glob("*.yaml"))]
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        found += [(f"{doc.relative_to(ROOT)} block {i}", yaml.safe_load(b)) for i, b in enumerate(_yaml_blocks(doc))]
    return found


def _sent_actions(cfg: GatewayConfig, code: str) -> set[tuple[str, str]]:
    """(stage, action) of the valid samples of the agency's packs: its channels', else the pack claiming it."""
    search = tuple(cfg.gateway.mapping_dirs)
    names = {ch.mapping for ch in cfg.agency(code).inbound if ch.mapping != "identity"}
    packs = [load_pack(n, search) for n in sorted(names)]
    if not packs:
        try:
            packs = [pack_for_agency(code, search)]
        except PackNotFound:
            return set()
    sent = set()
    for pack in packs:
        for sample in sorted((pack.samples / "valid").glob("*.xml")):
            out = check_file(sample.read_bytes(), pack, sender=code, source=sample.name)
            assert out.standard is not None and not out.blocked, (pack.name, sample.name)
            env = standard.envelope(out.standard)
            sent.add((env.stage, env.action))
    return sent


@pytest.mark.parametrize(("name", "source"), example_configs(), ids=[n for n, _ in example_configs()])
def test_every_example_configuration_routes_what_each_agency_sends(name: str, source: object) -> None:
    cfg = load_config(source) if isinstance(source, Path) else parse_config(source, source=name)  # type: ignore[arg-type]
    router = Router(cfg.routes, {a.code for a in cfg.agencies})
    checked, unrouted = 0, []
    for agency in cfg.agencies:
        for stage, action in sorted(_sent_actions(cfg, agency.code)):
            env = standard.Envelope(version="1.0", case_number="A1", stage=stage, action=action,
                                    sender=agency.code, receivers=())  # no named receiver: routes alone
            to, _ = router.destinations(env)
            checked += 1
            if not to:
                unrouted.append(f"{agency.code} sends {stage}/{action}")
    assert checked >= 5, f"{name}: too few agencies' actions found to judge its routes"
    assert not unrouted, f"{name} routes these nowhere: {unrouted}"

