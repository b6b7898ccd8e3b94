"""Makes tests/data/golden/ from two implementations of TTSR that this project did not write.

Development-time only: it runs the TTSR modules of open-mmlab/mmagic and of researchmm/TTSR from
checkouts given on the command line (never committed), on seeded integer-coded weights, and writes
only their inputs, weights and outputs.  See tests/data/golden/README.md for how to get the checkouts.

    python scripts/make_golden.py --mmagic /tmp/mmagic --official /tmp/TTSR --out tests/data/golden

The third-party modules need mmengine/mmcv/torchvision only for plumbing (a module base class, a
registry, a conv factory, VGG19's layer list, weight initialisers); small stand-ins replace those
here.  All the arithmetic (every forward function and the module structure) is the checkouts' own.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

SEED = 20261204
# A reduced generator keeps the fixture under 1 MB; the texture extractor and the search-transfer
# block have no size options (VGG19 fixes their channels).
GENERATOR_CONFIG = {"mid_channels": 8, "num_blocks": (2, 2, 2, 2)}
# (name, LR height x width, Ref height x width); Ref sides are multiples of 4 as the model requires.
CASES = (("square", (4, 4), (16, 16)), ("nonsquare", (3, 5), (12, 20)))
# Weights are integer codes times a power of two, so both implementations and the float32 file
# hold exactly the same values.  The gain keeps the residual branches large: with them near zero
# (as freshly initialised networks have them), swapping a skip connection would change the output
# by less than the tests' tolerance.
CODE_MAX = 127
GAIN = 0.7


def _module(name: str, **attributes: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    module.__path__ = []  # a package, so that submodules can be registered under it
    sys.modules[name] = module
    return module


def _load_file(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _vgg19_features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` layer list (configuration E), randomly initialised."""
    layers: list[nn.Module] = []
    channels = 3
    for width in (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                  512, 512, 512, 512, "M"):
        if width == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(width), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(width)
    return nn.Sequential(*layers)


def _install_stand_ins() -> None:
    class BaseModule(nn.Module):
        def __init__(self, init_cfg: object = None) -> None:
            super().__init__()

    class Registry:
        def register_module(self, *args: object, **kwargs: object):
            return lambda cls: cls

    def build_conv_layer(cfg: dict, *args: object, **kwargs: object) -> nn.Module:
        assert cfg["type"] == "Conv2d"
        return nn.Conv2d(*args, **kwargs)

    def make_layer(block: type, num_blocks: int, **kwargs: object) -> nn.Sequential:
        return nn.Sequential(*(block(**kwargs) for _ in range(num_blocks)))

    def vgg19(pretrained: bool = False) -> types.SimpleNamespace:
        return types.SimpleNamespace(features=_vgg19_features())

    _module("mmengine")
    _module("mmengine.model", BaseModule=BaseModule)
    _module("mmcv")
    _module("mmcv.cnn", build_conv_layer=build_conv_layer)
    _module("torchvision", models=types.SimpleNamespace(vgg19=vgg19))
    _module("cv2")  # the official utils.py imports it; MeanShift does not use it
    _module("mmagic")
    _module("mmagic.registry", MODELS=Registry())
    _module("mmagic.models")
    # Initialisers only: every weight is overwritten below.
    _module("mmagic.models.utils", make_layer=make_layer, default_init_weights=lambda *a, **k: None)
    _module("mmagic.models.editors")
    _module("mmagic.models.editors.ttsr")


def _mmagic_modules(root: Path) -> types.SimpleNamespace:
    archs = _module("mmagic.models.archs")
    src = root / "mmagic" / "models"
    for name in ("sr_backbone", "upsample", "img_normalize"):
        _load_file(f"mmagic.models.archs.{name}", src / "archs" / f"{name}.py")
    archs.ResidualBlockNoBN = sys.modules["mmagic.models.archs.sr_backbone"].ResidualBlockNoBN
    archs.PixelShufflePack = sys.modules["mmagic.models.archs.upsample"].PixelShufflePack
    archs.ImgNormalize = sys.modules["mmagic.models.archs.img_normalize"].ImgNormalize
    net = _load_file("mmagic.models.editors.ttsr.ttsr_net", src / "editors" / "ttsr" / "ttsr_net.py")
    lte = _load_file("mmagic.models.editors.ttsr.lte", src / "editors" / "ttsr" / "lte.py")
    st = _load_file("mmagic.models.editors.ttsr.search_transformer",
                    src / "editors" / "ttsr" / "search_transformer.py")
    return types.SimpleNamespace(
        generator=net.TTSRNet(3, 3, texture_channels=64, **GENERATOR_CONFIG).eval(),
        extractor=lte.LTE(requires_grad=False, load_pretrained_vgg=False).eval(),
        transformer=st.SearchTransformer().eval())


def _official_modules(root: Path) -> types.SimpleNamespace:
    sys.path.insert(0, str(root))
    try:
        from model import LTE, MainNet, SearchTransfer  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(root))
    return types.SimpleNamespace(
        MainNet=MainNet.MainNet(num_res_blocks=list(GENERATOR_CONFIG["num_blocks"]),
                                n_feats=GENERATOR_CONFIG["mid_channels"], res_scale=1.0).eval(),
        LTE=LTE.LTE(requires_grad=False).eval(),
        SearchTransfer=SearchTransfer.SearchTransfer().eval())


def _coded_weights(state: dict[str, torch.Tensor], rng: np.random.Generator
                   ) -> tuple[dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """Seeded weights ``code * 2**-shift`` (int8 codes) for every learnt tensor; the frozen ImageNet
    normalisation keeps its constants."""
    values: dict[str, torch.Tensor] = {}
    stored: dict[str, np.ndarray] = {}
    for key, tensor in state.items():
        if "img_normalize" in key:
            values[key] = tensor.clone()
            stored[f"float/{key}"] = tensor.numpy().astype(np.float32)
            continue
        fan_in = int(np.prod(tensor.shape[1:])) if tensor.dim() > 1 else 64
        target_std = GAIN * np.sqrt(1.0 / fan_in) if tensor.dim() > 1 else 0.05
        code_std = CODE_MAX / np.sqrt(3.0)
        shift = int(round(np.log2(code_std / target_std)))
        codes = rng.integers(-CODE_MAX, CODE_MAX + 1, size=tuple(tensor.shape), dtype=np.int8)
        values[key] = torch.from_numpy(codes.astype(np.float32) * np.float32(2.0 ** -shift))
        stored[f"code/{key}"] = codes
        stored[f"shift/{key}"] = np.array(shift, np.int8)
    return values, stored


def _inputs(lr: tuple[int, int], ref: tuple[int, int], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """uint8-valued images in the model's ranges: lq in [-1, 1], the others in [0, 1]."""
    def image(h: int, w: int) -> np.ndarray:
        return rng.integers(0, 256, size=(1, 3, h, w)).astype(np.float32)
    return {"lq": image(*lr) / np.float32(127.5) - np.float32(1.0),
            "lq_up": image(4 * lr[0], 4 * lr[1]) / np.float32(255.0),
            "ref": image(*ref) / np.float32(255.0),
            "ref_downup": image(*ref) / np.float32(255.0)}


# Generator features captured by hooks, stored as ``{case}/generator.{module}.{in|out}{index}``:
# sfe.out0 after the shallow extractor; up1.in0 after stage 1; csfi2.out0/out1 the CSFI2 outputs;
# csfi3.in0/in1 after stage 2 and csfi3.in2 the x4 branch before CSFI3; csfi3.out0-2 the CSFI3
# outputs; merge_features.in0-2 after stage 3.  Tests rebuild the hooks from these names.
STAGE_HOOKS = (("sfe", "out", 0), ("up1", "in", 0), ("csfi2", "out", 0), ("csfi2", "out", 1),
               ("csfi3", "in", 0), ("csfi3", "in", 1), ("csfi3", "in", 2), ("csfi3", "out", 0),
               ("csfi3", "out", 1), ("csfi3", "out", 2), ("merge_features", "in", 0),
               ("merge_features", "in", 1), ("merge_features", "in", 2))


def _run_mmagic(m: types.SimpleNamespace, x: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    captured: dict[str, np.ndarray] = {}
    handles = []
    for child, kind, index in STAGE_HOOKS:
        def keep(tensors, name=f"generator.{child}.{kind}{index}", index=index):
            picked = tensors[index] if isinstance(tensors, (tuple, list)) else tensors
            captured[name] = picked.detach().numpy().copy()
        module = getattr(m.generator, child)
        if kind == "in":
            handles.append(module.register_forward_pre_hook(lambda mod, args, keep=keep: keep(args)))
        else:
            handles.append(module.register_forward_hook(lambda mod, args, out, keep=keep: keep(out)))
    with torch.no_grad():
        q, _, _ = m.extractor(x["lq_up"])
        k, _, _ = m.extractor(x["ref_downup"])
        refs = m.extractor(x["ref"])
        s, textures = m.transformer(q, k, refs)
        sr = m.generator(x["lq"], s, textures)
    for handle in handles:
        handle.remove()
    out = {"s": s.numpy(), "t3": textures[0].numpy(), "t2": textures[1].numpy(),
           "t1": textures[2].numpy(), "sr": sr.numpy()}
    out.update(captured)
    return out


def _run_official(o: types.SimpleNamespace, x: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    with torch.no_grad():
        # The official TTSR.forward maps its [-1, 1] inputs to [0, 1] before the LTE; the golden
        # inputs are already in [0, 1], so the LTE is called directly.
        _, _, q = o.LTE(x["lq_up"])
        _, _, k = o.LTE(x["ref_downup"])
        v1, v2, v3 = o.LTE(x["ref"])
        s, t3, t2, t1 = o.SearchTransfer(q, k, v1, v2, v3)
        sr = o.MainNet(x["lq"], s, t3, t2, t1)
    return {"s": s.numpy(), "t3": t3.numpy(), "t2": t2.numpy(), "t1": t1.numpy(), "sr": sr.numpy()}


def _official_names(mm_keys: list[str], official: types.SimpleNamespace) -> dict[str, str]:
    """mmediting key -> researchmm/TTSR key, matched by module path translation and checked below
    by running both implementations on the same weights."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from ttsr.model.checkpoint import to_official_key
    names = {key: to_official_key(key) for key in mm_keys}
    official_keys = {f"MainNet.{k}" for k in official.MainNet.state_dict()} | \
                    {f"LTE.{k}" for k in official.LTE.state_dict()}
    assert set(names.values()) == official_keys, sorted(set(names.values()) ^ official_keys)
    return names


def _git_head(root: Path) -> str:
    marker = root / "COMMIT"
    if marker.exists():
        return marker.read_text().strip()
    return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mmagic", type=Path, required=True, help="open-mmlab/mmagic checkout")
    parser.add_argument("--official", type=Path, required=True, help="researchmm/TTSR checkout")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    _install_stand_ins()
    mm = _mmagic_modules(args.mmagic)
    official = _official_modules(args.official)

    mm_state = {f"generator.{k}": v for k, v in mm.generator.state_dict().items()}
    mm_state.update({f"extractor.{k}": v for k, v in mm.extractor.state_dict().items()})
    rng = np.random.default_rng(SEED)
    weights, stored = _coded_weights(mm_state, rng)
    mm.generator.load_state_dict({k[len("generator."):]: v for k, v in weights.items()
                                  if k.startswith("generator.")}, strict=True)
    mm.extractor.load_state_dict({k[len("extractor."):]: v for k, v in weights.items()
                                  if k.startswith("extractor.")}, strict=True)
    names = _official_names(list(weights), official)
    official_state = {names[k]: v for k, v in weights.items()}
    official.MainNet.load_state_dict({k[len("MainNet."):]: v for k, v in official_state.items()
                                      if k.startswith("MainNet.")}, strict=True)
    official.LTE.load_state_dict({k[len("LTE."):]: v for k, v in official_state.items()
                                  if k.startswith("LTE.")}, strict=True)

    report = []
    for case, lr, ref in CASES:
        x_np = _inputs(lr, ref, rng)
        x = {k: torch.from_numpy(v) for k, v in x_np.items()}
        mm_out = _run_mmagic(mm, x)
        off_out = _run_official(official, x)
        diffs = {k: float(np.abs(mm_out[k] - off_out[k]).max()) for k in off_out}
        clamped = float(np.mean(np.abs(mm_out["sr"]) >= 1.0))
        report.append((case, lr, ref, diffs, clamped))
        assert max(diffs.values()) <= 1e-5, (case, diffs)
        for key, value in {**x_np, **mm_out}.items():
            stored[f"{case}/{key}"] = value.astype(np.float32)

    args.out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out / "golden.npz", **stored)
    with open(args.out / "official_names.tsv", "w") as stream:
        stream.write("".join(f"{k}\t{v}\n" for k, v in names.items()))
    print(f"mmagic {_git_head(args.mmagic)}; researchmm/TTSR {_git_head(args.official)}; seed {SEED}")
    for case, lr, ref, diffs, clamped in report:
        print(f"{case}: LR {lr[0]}x{lr[1]}, Ref {ref[0]}x{ref[1]}; mmagic vs official max |diff|: "
              + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()) + f"; SR pixels at the clamp {clamped:.1%}")
    print(f"wrote {args.out / 'golden.npz'} ({(args.out / 'golden.npz').stat().st_size} bytes)")


if __name__ == "__main__":
    main()
