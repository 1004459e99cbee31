"""The built wheel (not only an editable install) carries the standard and the mapping packs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_standard_and_mappings(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("case_exchange_gateway-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT).as_posix() for d in ("standards", "mappings", "gateway/api/console")
               for p in (ROOT / d).rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert shipped, "no data files found under standards/, mappings/ and the console"
    assert shipped <= names, f"missing from the wheel: {sorted(shipped - names)[:10]}"
    assert any(n.endswith("entry_points.txt") and "gateway" in zipfile.ZipFile(wheel).read(n).decode()
               for n in names)
