"""What agency IT meets first: a vendor schema that does not compile, pack.yaml's keys, finding the
pack for an agency, and the limits the standard puts on every field."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.mapping import load_pack

# 2. pack.yaml has a reference, generated from the model that reads it


def test_a_misspelt_pack_key_is_refused_naming_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "pack.yaml").write_text("name: p\nlegacy_catalogue: catalog.xml\nstandard: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_pack("p", (str(tmp_path),))
    assert f"{tmp_path / 'p' / 'pack.yaml'}: legacy_catalogue: unknown key" in str(caught.value)
    (tmp_path / "p" / "pack.yaml").write_text("name: [p\n")
    with pytest.raises(ConfigError, match=r"pack.yaml, line 2: not valid YAML"):
        load_pack("p", (str(tmp_path),))
    (tmp_path / "p" / "pack.yaml").write_text("name: p\nstandard: 1\n")  # a YAML number means the same
    assert load_pack("p", (str(tmp_path),)).standard == "1"


