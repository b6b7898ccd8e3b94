"""The TensorRT plugin library: build, exported ABI, and host-side behaviour.

The build test needs TensorRT headers (never part of the repository): give their
directory in TENSORRT_INCLUDE_DIR or a TensorRT prefix in TensorRT_ROOT (several,
separated by os.pathsep, to check e.g. 10.x and 11.x headers in one run).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PLUGIN_DIR = REPO / "plugins" / "trt"
CONTRACT_H = REPO / "plugins" / "search_transfer" / "contract.h"
EXPORTED = {"getCreators", "setLoggerFinder"}


def _tensorrt_include_dirs() -> list[Path]:
    dirs = [Path(p) for p in os.environ.get("TENSORRT_INCLUDE_DIR", "").split(os.pathsep) if p]
    dirs += [Path(p) / "include" for p in os.environ.get("TensorRT_ROOT", "").split(os.pathsep) if p]
    return dirs


def _contract_strings() -> dict[str, str]:
    return dict(re.findall(r'#define\s+(TTSR_ST_\w+)\s+"([^"]*)"', CONTRACT_H.read_text()))


def _plugin_sources() -> list[Path]:
    return sorted(p for p in PLUGIN_DIR.glob("*.[ch]pp") if p.is_file()) + sorted(PLUGIN_DIR.glob("*.h"))


def _string_literals(path: Path) -> set[str]:
    code = re.sub(r"//[^\n]*", "", path.read_text())
    return set(re.findall(r'"((?:[^"\\]|\\.)*)"', code))


def test_plugin_identity_and_fields_come_from_contract_h():
    contract = _contract_strings()
    names = {contract[key] for key in ("TTSR_ST_OP_TYPE", "TTSR_ST_ATTR_PATCH_SIZE", "TTSR_ST_ATTR_FOLD_DIVISOR",
                                       "TTSR_ST_ATTR_REF_CHUNK", "TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB")}
    sources = _plugin_sources()
    assert sources, f"no plugin sources in {PLUGIN_DIR}"
    for source in sources:
        duplicated = names & _string_literals(source)
        assert not duplicated, f"{source.name} repeats {duplicated} instead of using contract.h"
    code = "".join(p.read_text() for p in sources)
    for macro in ("TTSR_ST_OP_TYPE", "TTSR_ST_PLUGIN_VERSION", "TTSR_ST_PLUGIN_NAMESPACE",
                  "TTSR_ST_ATTR_PATCH_SIZE", "TTSR_ST_ATTR_FOLD_DIVISOR", "TTSR_ST_ATTR_REF_CHUNK",
                  "TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB", "TTSR_ST_MAX_WORKSPACE_BUDGET_MIB"):
        assert macro in code, f"the plugin does not use {macro} from contract.h"


def test_workspace_budget_field_mirrors_the_python_contract():
    from ttsr import contract as py_contract

    assert _contract_strings()["TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB"] == py_contract.WORKSPACE_BUDGET_FIELD
    assert py_contract.WORKSPACE_BUDGET_FIELD not in py_contract.ATTRIBUTES  # a plugin field, not the op's
    maximum = re.search(r"#define TTSR_ST_MAX_WORKSPACE_BUDGET_MIB (\d+)", CONTRACT_H.read_text())
    assert maximum is not None and int(maximum.group(1)) == py_contract.MAX_WORKSPACE_BUDGET_MIB


def test_version_script_exports_only_the_registration_entry_points():
    script = (PLUGIN_DIR / "exports.map").read_text()
    script = re.sub(r"/\*.*?\*/", "", script, flags=re.S)
    match = re.search(r"global:(.*?)local:\s*\*;", script, flags=re.S)
    assert match, "exports.map must list global symbols then 'local: *;'"
    assert set(re.findall(r"(\w+)\s*;", match.group(1))) == EXPORTED
    entry = (PLUGIN_DIR / "plugin_entry.cpp").read_text()
    for name in EXPORTED:
        assert re.search(rf'extern "C"[^\n]*\b{name}\(', entry), f"{name} is not extern \"C\""


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def _dynamic_symbols(library: Path, which: str) -> set[str]:
    out = _run(["nm", "-D", which, library.as_posix()]).stdout
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


@pytest.fixture(scope="module", params=_tensorrt_include_dirs() or [None],
                ids=lambda d: "no-tensorrt" if d is None else d.parent.name)
def plugin_build(request, tmp_path_factory) -> Path:
    """A scratch CMake build of the plugin against one set of TensorRT headers."""
    include_dir = request.param
    if include_dir is None:
        pytest.skip("no TensorRT headers: set TENSORRT_INCLUDE_DIR or TensorRT_ROOT (CI has none)")
    if not (include_dir / "NvInferRuntime.h").is_file():
        pytest.fail(f"{include_dir} has no NvInferRuntime.h: point TENSORRT_INCLUDE_DIR at TensorRT's include/")
    for tool in ("cmake", "nvcc", "nm", "readelf"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not found: the plugin needs the CUDA kernels and binutils")
    build = tmp_path_factory.mktemp("plugin-build")
    configure = _run(["cmake", "-S", REPO.as_posix(), "-B", build.as_posix(),
                      f"-DTTSR_TRT_INCLUDE_DIR={include_dir}",
                      f"-DPython3_EXECUTABLE={sys.executable}",
                      # One architecture: these tests are about the plugin glue, not the kernels' fatbin.
                      "-DCMAKE_CUDA_ARCHITECTURES=80"])
    assert "TensorRT plugin skipped" not in configure.stdout, configure.stdout
    _run(["cmake", "--build", build.as_posix(), "-j2", "--target",
          "ttsr_trt_plugin", "ttsr_trt_plugin_host_check", "ttsr_st_cpu"])
    return build


def test_plugin_exports_entry_points_only_and_needs_no_libnvinfer(plugin_build):
    library = plugin_build / "libttsr_trt_plugin.so"
    assert _dynamic_symbols(library, "--defined-only") == EXPORTED
    undefined = _dynamic_symbols(library, "--undefined-only")
    assert not {s for s in undefined if "nvinfer" in s.lower()}, "the plugin must not need libnvinfer"
    assert "libnvinfer" not in _run(["readelf", "-d", library.as_posix()]).stdout


def test_plugin_host_check_through_tensorrt_interfaces(plugin_build):
    check = _run([(plugin_build / "ttsr_trt_plugin_host_check").as_posix(),
                  (plugin_build / "libttsr_trt_plugin.so").as_posix(),
                  (plugin_build / "libttsr_st_cpu.so").as_posix()])
    assert check.stdout.rstrip().endswith("all checks passed"), check.stdout
    assert "equals ttsr_st_workspace_size at the largest shape and covers every runtime LR and Ref size" \
        in check.stdout


def test_tensorrt_rtx_registry_and_onnx_parser_use_the_plugin(plugin_build):
    """A real TensorRT (TensorRT-RTX runs on the CPU) loads the library dynamically, finds the
    creator by the contract's name, creates the plugin, and its ONNX parser reports a node with
    an unsupported attribute through the plugin's own message."""
    probe = _run([sys.executable, (PLUGIN_DIR / "test" / "rtx_probe.py").as_posix(),
                  (plugin_build / "libttsr_trt_plugin.so").as_posix()])
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    contract = _contract_strings()
    assert result["loaded"] and result["creators"] == [contract["TTSR_ST_OP_TYPE"]]
    assert result["fields"] == [*(contract[f"TTSR_ST_ATTR_{n}"] for n in ("PATCH_SIZE", "FOLD_DIVISOR", "REF_CHUNK")),
                                contract["TTSR_ST_FIELD_WORKSPACE_BUDGET_MIB"]]
    assert result["plugin"] == [contract["TTSR_ST_OP_TYPE"], contract["TTSR_ST_PLUGIN_VERSION"],
                                contract["TTSR_ST_PLUGIN_NAMESPACE"]]
    assert result["num_outputs"] == 4
    assert result["invalid_parsed"] is False
    assert any("Could not create the plugin" in e for e in result["invalid_errors"])
    assert "patch_size=5 is not supported" in probe.stderr
