"""mypy over the whole ttsr package (mypy.ini), the TensorRT-facing code against the tensorrt-stubs package.

tensorrt-stubs 10.13 installs ``tensorrt/__init__.pyi`` without a ``py.typed``
marker and with a few lines that are not valid Python (parameters named ``in``,
a parameter without default after defaulted ones), so mypy refuses it as
installed.  The test copies the stubs into a folder on MYPYPATH and repairs
those lines; everything else is checked as the package ships it.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STUB_PACKAGES = ("tensorrt", "tensorrt_bindings")


def _site_packages_with_stubs() -> Path | None:
    for entry in map(Path, sys.path):
        if (entry / "tensorrt_bindings" / "tensorrt.pyi").is_file():
            return entry
    return None


def _repair_def(line: str) -> str:
    """Make one stub ``def`` line parse: rename ``in`` parameters, default trailing ones."""
    line = re.sub(r"([(,]\s*)in(\s*:)", r"\1in_\2", line)
    try:
        ast.parse(line.strip() + " ...")
        return line
    except SyntaxError:
        pass
    head, _, rest = line.partition("(")
    params, _, tail = rest.rpartition(")")
    fixed, seen_default = [], False
    for param in re.split(r",\s*(?![^\[]*\])", params):
        seen_default = seen_default or "=" in param
        if seen_default and "=" not in param and not param.strip().startswith("*"):
            param += " = ..."
        fixed.append(param)
    return f"{head}({', '.join(fixed)}){tail}"


def _repaired_stubs(site: Path, dest: Path) -> None:
    for package in STUB_PACKAGES:
        for stub in (site / package).glob("*.pyi"):
            out = dest / package / stub.name
            out.parent.mkdir(parents=True, exist_ok=True)
            lines = [_repair_def(l) if l.lstrip().startswith("def ") else l
                     for l in stub.read_text().splitlines()]
            out.write_text("\n".join(lines) + "\n")


def test_repair_def_fixes_the_two_known_stub_defects():
    assert _repair_def("    def f(self, in: list[int], out: int) -> int:") == \
        "    def f(self, in_: list[int], out: int) -> int:"
    fixed = _repair_def("    def g(self, a: int = None, b: dict[str, int], c: int) -> X:")
    ast.parse(fixed.strip() + " ...")
    assert "b: dict[str, int] = ..." in fixed and "c: int = ..." in fixed


def test_mypy_passes_on_the_ttsr_package(tmp_path):
    site = _site_packages_with_stubs()
    if site is None:
        pytest.fail("tensorrt-stubs is not installed; run bash scripts/setup.sh")
    _repaired_stubs(site, tmp_path / "stubs")
    env = dict(os.environ, MYPYPATH=str(tmp_path / "stubs"))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(REPO / "mypy.ini"),
         "--cache-dir", str(tmp_path / "cache")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
