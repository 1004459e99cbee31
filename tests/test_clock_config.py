"""Bad time-limit input stops `gateway check-config` and the node's start with the file, the key and
what was expected, in Chinese and English; a deployment's overrides change values, never the code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from gateway import cli, timelimits
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.runtime import Gateway

from .support.config import base_config

LIMITS = yaml.safe_load(timelimits.standard_file().read_text(encoding="utf-8"))


def check(tmp_path: Path, clocks: dict[str, Any], limits: Any = None) -> str:
    """check-config's error output for a configuration with these clock settings (and limits file)."""
    data = base_config(tmp_path / "data")
    if limits is not None:
        (tmp_path / "limits.yaml").write_text(yaml.safe_dump(limits, allow_unicode=True), encoding="utf-8")
        clocks = {"limits_file": "limits.yaml", **clocks}
    data["clocks"] = clocks
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    r = CliRunner().invoke(cli.app, ["check-config", str(path)])
    assert r.exit_code == 2, r.output
    return r.stderr.replace("\n", " ")


def changed(limit_index: int, **values: Any) -> dict[str, Any]:
    out = yaml.safe_load(yaml.safe_dump(LIMITS))
    out["limits"][limit_index].update(values)
    return out


def test_shipped_limits_load_and_name_their_codes() -> None:
    tl = timelimits.standard_limits()
    assert [x.id for x in tl.limits] == ["arrest-decision", "prosecution-review", "supplementary-investigation",
                                         "first-instance-trial"]
    assert tl.get("arrest-decision").length.days == 7 and tl.get("arrest-decision").custody
    assert tl.get("prosecution-review").length.months == 1
    assert tl.get("supplementary-investigation").max_periods == 2
    assert tl.terms("first-instance-trial/expedited").length.days == 10


def test_unknown_action_code(tmp_path: Path) -> None:
    err = check(tmp_path, {}, changed(0, starts=["request-arest-approval"]))
    assert "limits.yaml: limits[0].starts[0]: expected an action code of the standard" in err
    assert "request-arest-approval" in err and "标准代码表中的业务动作代码" in err


@pytest.mark.parametrize("length", [{"days": 0}, {"days": -3}, {"months": 0}])
def test_zero_or_negative_length(tmp_path: Path, length: dict[str, int]) -> None:
    err = check(tmp_path, {}, changed(0, length=length))
    assert "limits.yaml: limits.0.length: expected a length of at least 1" in err and "期限长度应当至少为1" in err


def test_stop_equal_to_start(tmp_path: Path) -> None:
    err = check(tmp_path, {}, changed(0, stops=["request-arrest-approval"]))
    assert "limits.0: stops: request-arrest-approval also starts the clock" in err
    assert "停止动作不能与起算动作相同" in err


def test_extension_without_bound(tmp_path: Path) -> None:
    err = check(tmp_path, {}, changed(1, extensions=[{"document": "review-extension-decision", "by": {"days": 15}}]))
    assert "limits.1.extensions.0: an extension without a bound: expected max_times" in err and "延长未设上限" in err


def test_unreadable_holiday_file(tmp_path: Path) -> None:
    err = check(tmp_path, {"holidays_file": "holidays-2030.yaml"})
    assert "holidays-2030.yaml: cannot read the holiday file" in err and "无法读取节假日文件" in err


def test_override_of_an_unknown_limit_and_a_bad_value(tmp_path: Path) -> None:
    err = check(tmp_path, {"limits": {"arrest-review": {"length": {"days": 5}}}})
    assert "clocks.limits.arrest-review: expected the id of a limit of the standard" in err
    err = check(tmp_path, {"limits": {"arrest-decision": {"length": {"days": 0}}}})
    assert "with the overrides of" in err and "limits.0.length: expected a length of at least 1" in err


def test_a_deployment_overrides_a_value_in_its_configuration(tmp_path: Path) -> None:
    tl = timelimits.load(None, {"arrest-decision": {"length": {"days": 5}, "custody": False}})
    assert tl.get("arrest-decision").length.days == 5 and not tl.get("arrest-decision").custody
    assert timelimits.standard_limits().get("arrest-decision").length.days == 7  # the standard's file is untouched


def test_supervisor_without_outbound_channel(tmp_path: Path) -> None:
    err = check(tmp_path, {"supervisors": [{"limit": "arrest-decision", "to": ["NOBODY"]}]})
    assert "clocks.supervisors[0].to[0]: expected an agency with an outbound channel, found NOBODY" in err


def test_pack_without_a_notice_template_is_refused_at_start(tmp_path: Path) -> None:
    pack = tmp_path / "packs" / "bare"
    pack.mkdir(parents=True)
    (pack / "pack.yaml").write_text("name: bare\noutbound: outbound.xsl\n")
    (pack / "outbound.xsl").write_text(
        '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" '
        'xmlns:c="urn:cn:justice:case-exchange:1"><xsl:template match="/c:CaseRecord"><R/></xsl:template>'
        "</xsl:stylesheet>")
    data = base_config(tmp_path / "data", mapping_dirs=[str(tmp_path / "packs")])
    data["agencies"][1]["outbound"]["mapping"] = "bare"
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(data))
    r = CliRunner().invoke(cli.app, ["check-config", str(path)])
    assert r.exit_code == 2
    assert "agency PROC: its outbound mapping pack `bare` cannot render a time-limit notice" in r.stderr.replace(
        "\n", " ")
    with pytest.raises(ConfigError, match="cannot render a time-limit notice"):
        import asyncio

        asyncio.run(Gateway(parse_config(data, source=str(path))).start())
    assert not (tmp_path / "data" / "gateway.db").exists()  # refused before anything was opened
