"""Loading and saving TTSR checkpoints (mmediting 0.x / mmagic 1.x, bare state dicts, official researchmm/TTSR).

Files are read with ``torch.load(weights_only=True)`` only: a checkpoint is data
from the internet and must never run code.  Every failure becomes one
:class:`CheckpointError` line naming the problem and the fix.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ttsr.atomic import atomic_output
from ttsr.model.ttsr import TTSR, build_model

CHECKPOINT_URLS = {
    "ttsr-rec": "https://download.openmmlab.com/mmediting/restorers/ttsr/"
                "ttsr-rec_x4_c64b16_g1_200k_CUFED_20210525-b0dba584.pth",
    "ttsr-gan": "https://download.openmmlab.com/mmediting/restorers/ttsr/"
                "ttsr-gan_x4_c64b16_g1_500k_CUFED_20210626-2ab28ca0.pth",
}

# Parts of training checkpoints that the inference network does not own:
# the GAN's discriminator and VGG loss, mmagic 1.x's frozen extractor copy and
# data preprocessor, the official code's LTE copy, and 0.x's iteration counter.
IGNORED_KEYS = frozenset({"step_counter"})
IGNORED_PREFIXES = ("discriminator.", "perceptual_loss.", "extractor_copy.",
                    "data_preprocessor.", "LTE_copy.")

# researchmm/TTSR module names -> mmediting module names (generator part).
OFFICIAL_GENERATOR_NAMES = {
    "SFE.conv_head": "sfe.conv_first",
    "SFE.RBs": "sfe.body",
    "SFE.conv_tail": "sfe.conv_last",
    "conv11_head": "conv_first1",
    "RB11": "res_block1",
    "conv11_tail": "conv_last1",
    "conv12": "up1.upsample_conv",
    "conv22_head": "conv_first2",
    "ex12.conv12": "csfi2.conv1to2",
    "ex12.conv21": "csfi2.conv2to1",
    "ex12.conv_merge1": "csfi2.conv_merge1",
    "ex12.conv_merge2": "csfi2.conv_merge2",
    "RB21": "res_block2_1",
    "RB22": "res_block2_2",
    "conv21_tail": "conv_last2_1",
    "conv22_tail": "conv_last2_2",
    "conv23": "up2.upsample_conv",
    "conv33_head": "conv_first3",
    "ex123.conv12": "csfi3.conv1to2",
    "ex123.conv13": "csfi3.conv1to4",
    "ex123.conv21": "csfi3.conv2to1",
    "ex123.conv23": "csfi3.conv2to4",
    "ex123.conv31_1": "csfi3.conv4to1_1",
    "ex123.conv31_2": "csfi3.conv4to1_2",
    "ex123.conv32": "csfi3.conv4to2",
    "ex123.conv_merge1": "csfi3.conv_merge1",
    "ex123.conv_merge2": "csfi3.conv_merge2",
    "ex123.conv_merge3": "csfi3.conv_merge4",
    "RB31": "res_block3_1",
    "RB32": "res_block3_2",
    "RB33": "res_block3_3",
    "conv31_tail": "conv_last3_1",
    "conv32_tail": "conv_last3_2",
    "conv33_tail": "conv_last3_3",
    "merge_tail.conv13": "merge_features.conv1to4",
    "merge_tail.conv23": "merge_features.conv2to4",
    "merge_tail.conv_merge": "merge_features.conv_merge",
    "merge_tail.conv_tail1": "merge_features.conv_last1",
    "merge_tail.conv_tail2": "merge_features.conv_last2",
}
# researchmm/TTSR module names -> mmediting module names (extractor part);
# the VGG slices keep their names.
OFFICIAL_EXTRACTOR_NAMES = {"sub_mean": "img_normalize"}
# The official MeanShift holds the same ImageNet constants as ``img_normalize``;
# a file without it still loads, keeping the model's constants.
OPTIONAL_OFFICIAL_KEYS = frozenset({"extractor.img_normalize.weight", "extractor.img_normalize.bias"})

_SHOWN_KEYS = 4
_REFUSED_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global|but got <class '([^']+)'>")


class CheckpointError(ValueError):
    """A checkpoint file or state dict that cannot become a TTSR; the message is one line."""


def _numpy_safe_globals() -> list[Any]:
    # mmcv stores numpy scalars (e.g. best scores in meta['hook_msgs']).
    # Rebuilding a scalar or a dtype from bytes runs no user code, so exactly
    # these are allowed; numpy 1.x files name the scalar ``numpy.core...``.
    scalar = importlib.import_module("numpy._core.multiarray").scalar
    dtype_classes = {type(np.dtype(code))
                     for code in "?" + np.typecodes["AllInteger"] + np.typecodes["AllFloat"]}
    return [(scalar, "numpy.core.multiarray.scalar"),
            (scalar, "numpy._core.multiarray.scalar"),
            np.dtype, *sorted(dtype_classes, key=lambda cls: cls.__name__)]


def _first_sentence(error: BaseException) -> str:
    # torch's own messages run to several lines of advice; the first sentence names the damage.
    text = str(error).strip()
    sentence = re.split(r"(?<=\.)\s|\n", text, maxsplit=1)[0][:160]
    return f"{type(error).__name__}: {sentence}" if sentence else type(error).__name__


def _read_file(path: Path, map_location: Any) -> Any:
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}; give the path of a TTSR .pth file "
                              f"(the released one: {CHECKPOINT_URLS['ttsr-rec']})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file; give the path of a TTSR .pth file")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _REFUSED_GLOBAL.search(str(error))
        if refused is None:
            raise CheckpointError(f"checkpoint {path} cannot be read as a PyTorch checkpoint "
                                  f"({_first_sentence(error)}); download it again") from error
        name = refused.group(1) or refused.group(2)
        raise CheckpointError(
            f"checkpoint {path} refers to {name}, which safe loading (weights_only) refuses to run; "
            f"if you trust the file, keep only its weights: python -c \"import torch; "
            f"c = torch.load('{path}', weights_only=False); torch.save({{'state_dict': c['state_dict']}}, "
            f"'weights.pth')\"") from error
    except Exception as error:
        # torch reports a damaged or foreign file with whatever its parser hit
        # (KeyError, EOFError, RuntimeError from the zip reader, ...).
        raise CheckpointError(f"checkpoint {path} cannot be read as a PyTorch checkpoint "
                              f"({_first_sentence(error)}); check the path or download it again") from error


def _list_keys(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN_KEYS])
    more = f", ... ({len(keys)} in all)" if len(keys) > _SHOWN_KEYS else ""
    return shown + more


def _rename_module(name: str, names: Mapping[str, str]) -> str:
    # Longest official module name that is a whole-segment prefix of ``name``.
    for official in sorted(names, key=len, reverse=True):
        if name == official or name.startswith(official + "."):
            return names[official] + name[len(official):]
    return name


def _from_official_key(key: str) -> str:
    if key.startswith("MainNet."):
        return "generator." + _rename_module(key[len("MainNet."):], OFFICIAL_GENERATOR_NAMES)
    if key.startswith("LTE."):
        return "extractor." + _rename_module(key[len("LTE."):], OFFICIAL_EXTRACTOR_NAMES)
    return key


def to_official_key(key: str) -> str:
    """The researchmm/TTSR name of an mmediting ``generator.*`` / ``extractor.*`` key."""
    if key.startswith("generator."):
        inverse = {ours: official for official, ours in OFFICIAL_GENERATOR_NAMES.items()}
        return "MainNet." + _rename_module(key[len("generator."):], inverse)
    if key.startswith("extractor."):
        inverse = {ours: official for official, ours in OFFICIAL_EXTRACTOR_NAMES.items()}
        return "LTE." + _rename_module(key[len("extractor."):], inverse)
    return key


def _is_ignored(key: str) -> bool:
    return key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES)


def _weights_of(checkpoint: Any, source: str) -> tuple[dict[str, Tensor], bool]:
    """The network's tensors under mmediting names, and whether the file used the official names."""
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{source} holds a {type(checkpoint).__name__}, not a state dict; "
                              f"give an mmediting/mmagic TTSR checkpoint or a saved state dict")
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: its 'state_dict' is a {type(state).__name__}, not a mapping of tensors; "
                              f"give an mmediting/mmagic TTSR checkpoint")
    keys = [str(key) for key in state]
    if keys and all(key.startswith("module.") for key in keys):
        # A state dict saved from a DataParallel wrapper.
        state = {str(key)[len("module."):]: value for key, value in state.items()}
    official = any(str(key).startswith(("MainNet.", "LTE.")) for key in state)
    weights: dict[str, Tensor] = {}
    not_tensors = []
    for key, value in state.items():
        key = str(key)
        if _is_ignored(key):
            continue
        if not isinstance(value, Tensor):
            not_tensors.append(key)
            continue
        weights[_from_official_key(key) if official else key] = value
    if not_tensors:
        raise CheckpointError(f"{source}: entries that are not tensors: {_list_keys(not_tensors)}; "
                              f"give a TTSR state dict (tensors under generator.* / extractor.*)")
    return weights, official


def load_state_dict_into(model: TTSR, state: Mapping[str, Any], *, source: str = "state dict") -> None:
    """Load an mmediting/mmagic checkpoint dict, a bare state dict or an official one into ``model``.

    Raises :class:`CheckpointError` naming missing, unexpected or mis-shaped keys.
    """
    weights, official = _weights_of(state, source)
    expected = model.state_dict()
    if official:
        for key in OPTIONAL_OFFICIAL_KEYS - weights.keys():
            weights[key] = expected[key]
    missing = [key for key in expected if key not in weights]
    unexpected = [key for key in weights if key not in expected]
    misshaped = [f"{key} {list(weights[key].shape)} (model {list(expected[key].shape)})"
                 for key in expected if key in weights and weights[key].shape != expected[key].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} key(s): {_list_keys(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} key(s): {_list_keys(unexpected)}")
    if misshaped:
        problems.append(f"wrong shape for {len(misshaped)} key(s): {_list_keys(misshaped)}")
    if problems:
        raise CheckpointError(f"{source} is not a TTSR x4 c64b16 checkpoint: {'; '.join(problems)}; "
                              f"use an mmediting/mmagic TTSR checkpoint such as {CHECKPOINT_URLS['ttsr-rec']}")
    model.load_state_dict(weights, strict=True)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu", *,
                    model: TTSR | None = None) -> TTSR:
    """A TTSR in eval mode with the weights of the checkpoint at ``path``.

    ``model``: the network to load into (default: the released x4 c64b16 configuration).
    """
    path = Path(path)
    checkpoint = _read_file(path, map_location)
    if model is None:
        model = build_model()
    load_state_dict_into(model, checkpoint, source=f"checkpoint {path}")
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval()


def save_mmediting_checkpoint(model: TTSR, path: str | os.PathLike[str], meta: dict[str, Any] | None = None,
                              *, legacy: bool = False) -> Path:
    """Write ``{'meta', 'state_dict'}`` as mmediting 0.x does; ``legacy`` uses the pre-zip format of the released files."""
    path = Path(path)
    state = OrderedDict((key, value.detach().cpu()) for key, value in model.state_dict().items())
    checkpoint = {"meta": dict(meta) if meta is not None else {"saved_by": "ttsr-trt"}, "state_dict": state}
    with atomic_output(path) as temp, open(temp, "xb") as stream:
        torch.save(checkpoint, stream, _use_new_zipfile_serialization=not legacy)
    return path
