"""The project against TTSR as mmagic and researchmm/TTSR compute it (tests/data/golden, see its README).

Stage by stage and end to end: the PyTorch reference, checkpoint loading in both layouts, the
plain and rewritten ONNX graphs on ONNX Runtime (the latter through the plugin's CPU twin), and
the twin on its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ttsr.data import ModelInputs
from ttsr.export.onnx_export import export_onnx
from ttsr.model import TTSR, load_checkpoint, load_state_dict_into
from ttsr.model.ttsr_net import TTSRNet, upsample
from ttsr.plugin import native
from ttsr.backends.ort import OrtBackend
from ttsr.surgery import rewrite_search_transfer

GOLDEN = Path(__file__).parent / "data" / "golden"
# The generator configuration scripts/make_golden.py used (GENERATOR_CONFIG there).
CONFIG = {"mid_channels": 8, "num_blocks": (2, 2, 2, 2)}
CASES = ("square", "nonsquare")
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN / "golden.npz") as data:
        return {key: data[key] for key in data.files}


def golden_state(golden: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The fixture's weights under mmediting names: ``code * 2**-shift``, or stored floats."""
    state = {}
    for key, value in golden.items():
        kind, _, name = key.partition("/")
        if kind == "code":
            scale = np.float32(2.0 ** -int(golden[f"shift/{name}"]))
            state[name] = torch.from_numpy(value.astype(np.float32) * scale)
        elif kind == "float":
            state[name] = torch.from_numpy(value)
    return state


@pytest.fixture(scope="module")
def model(golden) -> TTSR:
    network = TTSR(**CONFIG)
    load_state_dict_into(network, {"state_dict": golden_state(golden)}, source="golden fixture")
    return network.eval()


def case_inputs(golden: dict[str, np.ndarray], case: str) -> ModelInputs:
    return ModelInputs(**{name: golden[f"{case}/{name}"] for name in ("lq", "lq_up", "ref", "ref_downup")})


def max_diff(ours: np.ndarray | torch.Tensor, expected: np.ndarray) -> float:
    ours = ours.detach().numpy() if isinstance(ours, torch.Tensor) else ours
    assert ours.shape == expected.shape
    return float(np.abs(ours - expected).max())


def run_with_stage_hooks(model: TTSR, golden: dict[str, np.ndarray], case: str) -> dict[str, np.ndarray]:
    """Our model's S, T3/T2/T1, SR and every generator feature the fixture holds, by its name
    ``generator.{module}.{in|out}{index}``."""
    captured: dict[str, np.ndarray] = {}
    handles = []
    prefix = f"{case}/generator."
    for key in (k for k in golden if k.startswith(prefix)):
        module_name, _, slot = key[len(prefix):].rpartition(".")
        kind, index = slot[:-1], int(slot[-1])
        module = getattr(model.generator, module_name)

        def keep(tensors, name=key[len(case) + 1:], index=index):
            picked = tensors[index] if isinstance(tensors, (tuple, list)) else tensors
            captured[name] = picked.detach().numpy().copy()
        if kind == "in":
            handles.append(module.register_forward_pre_hook(lambda mod, args, keep=keep: keep(args)))
        else:
            handles.append(module.register_forward_hook(lambda mod, args, out, keep=keep: keep(out)))
    handles.append(model.search_transfer.register_forward_hook(
        lambda mod, args, out: captured.update(zip(("s", "t3", "t2", "t1"), (t.numpy() for t in out)))))
    try:
        with torch.no_grad():
            captured["sr"] = model(*case_inputs(golden, case).as_torch()).numpy()
    finally:
        for handle in handles:
            handle.remove()
    return captured


@pytest.mark.parametrize("case", CASES)
def test_every_stage_matches_the_fixture(model, golden, case):
    ours = run_with_stage_hooks(model, golden, case)
    expected = {key[len(case) + 1:]: value for key, value in golden.items()
                if key.startswith(f"{case}/") and key[len(case) + 1:] not in ("lq", "lq_up", "ref", "ref_downup")}
    assert len(expected) == 18 and ours.keys() == expected.keys()
    diffs = {name: max_diff(ours[name], expected[name]) for name in expected}
    assert max(diffs.values()) <= TOLERANCE, diffs


@pytest.mark.parametrize("case", CASES)
def test_generator_alone_matches_the_fixture(model, golden, case):
    textures = tuple(torch.from_numpy(golden[f"{case}/{t}"]) for t in ("t3", "t2", "t1"))
    with torch.no_grad():
        sr = model.generator(torch.from_numpy(golden[f"{case}/lq"]), torch.from_numpy(golden[f"{case}/s"]),
                             textures)
    assert max_diff(sr, golden[f"{case}/sr"]) <= TOLERANCE


def generator_with_csfi_outputs_as_skips(net: TTSRNet, lq: torch.Tensor, s: torch.Tensor,
                                         textures: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The generator as this project had it before issue #8: the skips of stages 2 and 3 added
    the CSFI outputs instead of the features from before CSFI."""
    t3, t2, t1 = textures
    x1 = net.sfe(lq)
    x1 = x1 + net.conv_first1(torch.cat((x1, t3), dim=1)) * s
    x1 = x1 + net.conv_last1(net.res_block1(x1))
    x22 = F.relu(net.up1(x1))
    x22 = x22 + net.conv_first2(torch.cat((x22, t2), dim=1)) * upsample(s, 2)
    x21, x22 = net.csfi2(x1, x22)
    x21 = x21 + net.conv_last2_1(net.res_block2_1(x21))
    x22 = x22 + net.conv_last2_2(net.res_block2_2(x22))
    x33 = F.relu(net.up2(x22))
    x33 = x33 + net.conv_first3(torch.cat((x33, t1), dim=1)) * upsample(s, 4)
    x31, x32, x33 = net.csfi3(x21, x22, x33)
    x31 = x31 + net.conv_last3_1(net.res_block3_1(x31))
    x32 = x32 + net.conv_last3_2(net.res_block3_2(x32))
    x33 = x33 + net.conv_last3_3(net.res_block3_3(x33))
    return net.merge_features(x31, x32, x33)


@pytest.mark.parametrize("case", CASES)
def test_the_old_skip_connections_fail_the_fixture(model, golden, case):
    textures = tuple(torch.from_numpy(golden[f"{case}/{t}"]) for t in ("t3", "t2", "t1"))
    with torch.no_grad():
        sr = generator_with_csfi_outputs_as_skips(model.generator, torch.from_numpy(golden[f"{case}/lq"]),
                                                  torch.from_numpy(golden[f"{case}/s"]), textures)
    assert max_diff(sr, golden[f"{case}/sr"]) > 100 * TOLERANCE


def official_layout(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights under researchmm/TTSR's names, as make_golden.py matched them by running it."""
    names = dict(line.split("\t") for line in (GOLDEN / "official_names.tsv").read_text().splitlines())
    assert names.keys() == state.keys()
    return {names[key]: value for key, value in state.items()}


@pytest.mark.parametrize("layout", ["mmediting", "official"])
def test_checkpoint_files_in_both_layouts_give_the_fixture(golden, tmp_path, layout):
    state = golden_state(golden)
    saved = {"meta": {}, "state_dict": state} if layout == "mmediting" else official_layout(state)
    torch.save(saved, tmp_path / "golden.pth")
    loaded = load_checkpoint(tmp_path / "golden.pth", model=TTSR(**CONFIG))
    for case in CASES:
        with torch.no_grad():
            sr = loaded(*case_inputs(golden, case).as_torch())
        assert max_diff(sr, golden[f"{case}/sr"]) <= TOLERANCE


@pytest.fixture(scope="module")
def graphs(model, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("golden-onnx")
    plain = export_onnx(model, root / "golden.plain.onnx")
    rewritten = rewrite_search_transfer(plain, root / "golden.rewritten.onnx").dst
    return {"plain": plain, "rewritten": Path(rewritten)}


@pytest.mark.parametrize("graph", ["plain", "rewritten"])
@pytest.mark.parametrize("case", CASES)
def test_onnx_runtime_gives_the_fixture(graphs, golden, graph, case):
    backend = OrtBackend(graphs[graph], threads=2)
    assert backend.has_plugin == (graph == "rewritten")
    assert max_diff(backend.run(case_inputs(golden, case)), golden[f"{case}/sr"]) <= TOLERANCE


@pytest.mark.parametrize("case", CASES)
def test_cpu_twin_gives_the_fixtures_textures(model, golden, case):
    inputs = case_inputs(golden, case).as_torch()
    with torch.no_grad():
        q = model.extractor(inputs[1])[0]
        k = model.extractor(inputs[3])[0]
        v3, v2, v1 = model.extractor(inputs[2])
    arrays = [t.numpy() for t in (q, k, v3, v2, v1)]
    for name, ours in zip(("s", "t3", "t2", "t1"), native.search_transfer_cpu(*arrays)):
        assert max_diff(ours, golden[f"{case}/{name}"]) <= TOLERANCE, name
