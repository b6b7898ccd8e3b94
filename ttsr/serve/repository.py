"""Triton model repositories.

* :func:`write_python_model`: one Python-backend model that takes uint8 images and runs a ttsr backend
  (what ``ttsr serve`` runs, and what ``ttsr export-triton --onnx`` exports).
* :func:`write_fleet_repository`: ``ttsr export-triton --engine``: the TensorRT plan under Triton's
  own TensorRT backend, between a Python preprocessing and a postprocessing model, joined by an
  ensemble that takes and returns images.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ttsr.backends.profiles import Profile
from ttsr.backends.trt.sidecar import EngineSidecar
from ttsr.model.ttsr import INPUT_NAMES, OUTPUT_NAME
from ttsr.serve.config import Batching, Instances, ModelConfig, TensorSpec
from ttsr.serve.spec import LR_INPUT, REF_INPUT, SPEC_PARAMETER, SR_OUTPUT, ServeSpec, describe_limits

IMAGE_DIMS = (-1, -1, 3)
IMAGE_INPUTS = (TensorSpec(LR_INPUT, "TYPE_UINT8", IMAGE_DIMS), TensorSpec(REF_INPUT, "TYPE_UINT8", IMAGE_DIMS))
IMAGE_OUTPUT = TensorSpec(SR_OUTPUT, "TYPE_UINT8", IMAGE_DIMS)
PLUGIN_FOLDER = "plugins"

_SHIM = '''"""Triton Python-backend model from ttsr-trt ({what}).

The server's Python needs the ttsr package (pip install ttsr-trt); see the repository's README.md.
"""

from ttsr.serve.models import {cls} as TritonPythonModel  # noqa: F401
'''


class RepositoryError(ValueError):
    """An engine or option that cannot make a repository; the message is one line."""


@dataclass(frozen=True)
class Scheduling:
    instances: int
    queue_delay_us: int


def _write_model(root: Path, config: ModelConfig, shim: str | None = None) -> Path:
    folder = root / config.name
    (folder / "1").mkdir(parents=True)
    (folder / "config.pbtxt").write_text(config.to_text())
    if shim is not None:
        (folder / "1" / "model.py").write_text(shim)
    return folder


def write_python_model(root: Path, name: str, spec: ServeSpec, scheduling: Scheduling,
                       kind: str = "KIND_CPU") -> Path:
    """The end-to-end model (:class:`ttsr.serve.models.TTSRModel`) in ``root/name``; returns its folder.

    Relative file paths in ``spec`` are taken from the model's folder.
    """
    config = ModelConfig(
        name=name, backend="python", max_batch_size=spec.max_batch, inputs=IMAGE_INPUTS, outputs=(IMAGE_OUTPUT,),
        batching=Batching(spec.max_batch, scheduling.queue_delay_us),
        instances=Instances(scheduling.instances, kind), parameters={SPEC_PARAMETER: spec.to_json()})
    return _write_model(root, config, _SHIM.format(what="uint8 LR and Ref in, uint8 SR out", cls="TTSRModel"))


def _axis(values: set[int]) -> int:
    """A config dim: the size when every profile fixes it to one value, else -1 (variable)."""
    return values.pop() if len(values) == 1 else -1


def plan_dims(profiles: list[Profile]) -> dict[str, tuple[int, ...]]:
    """Per input and the output: the dims (without batch) that every profile of the engine accepts."""
    dims = {}
    for name in INPUT_NAMES:
        shapes = [shape for p in profiles for shape in (p.shapes()[name][0], p.shapes()[name][2])]
        dims[name] = tuple(_axis({s[axis] for s in shapes}) for axis in range(1, 4))
    lq = dims["lq"]
    dims[OUTPUT_NAME] = (3, *(4 * d if d > 0 else -1 for d in lq[1:]))
    return dims


def check_fleet_profiles(profiles: list[Profile]) -> None:
    if not profiles:
        raise RepositoryError("the engine sidecar lists no profiles; rebuild the engine with build_engine.py")
    small = [p for p in profiles if p.batch_min > 1]
    if small:
        raise RepositoryError(f"profile(s) with batch min {small[0].batch_min}: Triton's batcher sends any batch "
                              f"from 1 up; rebuild the engine with --min-batch 1")


def fleet_configs(name: str, sidecar: EngineSidecar, scheduling: Scheduling) -> list[ModelConfig]:
    """The ensemble ``name`` and its three steps: preprocessing, the TensorRT plan, postprocessing."""
    check_fleet_profiles(sidecar.profiles)
    max_batch = max(p.batch_max for p in sidecar.profiles)
    dims = plan_dims(sidecar.profiles)
    tensors = {key: TensorSpec(key, "TYPE_FP32", value) for key, value in dims.items()}
    hint = "; the engine's profiles allow no more (rebuild it with larger --max-lr/--max-ref)"
    spec = ServeSpec(backend=None, profiles=sidecar.profiles, limit_hint=hint).to_json()
    batching = Batching(max_batch, scheduling.queue_delay_us)
    names = {step: f"{name}_{step}" for step in ("preprocess", "trt", "postprocess")}
    pre = ModelConfig(name=names["preprocess"], backend="python", max_batch_size=max_batch,
                      inputs=IMAGE_INPUTS, outputs=[tensors[n] for n in INPUT_NAMES], batching=batching,
                      instances=Instances(scheduling.instances, "KIND_CPU"), parameters={SPEC_PARAMETER: spec})
    plan = ModelConfig(name=names["trt"], platform="tensorrt_plan", max_batch_size=max_batch,
                       inputs=[tensors[n] for n in INPUT_NAMES], outputs=[tensors[OUTPUT_NAME]], batching=batching,
                       instances=Instances(scheduling.instances, "KIND_GPU",
                                           tuple(range(len(sidecar.profiles)))))
    post = ModelConfig(name=names["postprocess"], backend="python", max_batch_size=max_batch,
                       inputs=[tensors[OUTPUT_NAME]], outputs=[IMAGE_OUTPUT], batching=batching,
                       instances=Instances(scheduling.instances, "KIND_CPU"), parameters={SPEC_PARAMETER: spec})

    def step(model: str, inputs: list[str], outputs: list[str]) -> dict[str, object]:
        return {"model_name": model, "model_version": -1,
                "input_map": [{"key": key, "value": key} for key in inputs],
                "output_map": [{"key": key, "value": key} for key in outputs]}

    ensemble = ModelConfig(
        name=name, platform="ensemble", max_batch_size=max_batch, inputs=IMAGE_INPUTS, outputs=[IMAGE_OUTPUT],
        extra={"ensemble_scheduling": {"step": [
            step(names["preprocess"], [LR_INPUT, REF_INPUT], list(INPUT_NAMES)),
            step(names["trt"], list(INPUT_NAMES), [OUTPUT_NAME]),
            step(names["postprocess"], [OUTPUT_NAME], [SR_OUTPUT]),
        ]}})
    return [ensemble, pre, plan, post]


def write_fleet_repository(root: Path, name: str, engine: Path, plugin: Path, sidecar: EngineSidecar,
                           scheduling: Scheduling) -> None:
    ensemble, pre, plan, post = fleet_configs(name, sidecar, scheduling)
    _write_model(root, ensemble)
    _write_model(root, pre, _SHIM.format(what="preprocessing: uint8 images -> TTSR inputs",
                                         cls="PreprocessModel"))
    plan_folder = _write_model(root, plan)
    shutil.copyfile(engine, plan_folder / "1" / "model.plan")
    (plan_folder / "engine.json").write_text(sidecar.to_json())
    _write_model(root, post, _SHIM.format(what="postprocessing: TTSR output -> uint8 image",
                                          cls="PostprocessModel"))
    (root / PLUGIN_FOLDER).mkdir()
    shutil.copyfile(plugin, root / PLUGIN_FOLDER / plugin.name)
    (root / "README.md").write_text(fleet_readme(name, plan.name, plugin.name, sidecar))


def fleet_readme(name: str, plan_model: str, plugin_name: str, sidecar: EngineSidecar) -> str:
    profiles = "\n".join(f"* profile {i}: {p.describe()}" for i, p in enumerate(sidecar.profiles))
    return f"""# TTSR model repository for Triton Inference Server (made by `ttsr export-triton`)

Clients send `LR` (uint8, N x H x W x 3) and `REF` (uint8, N x Hr x Wr x 3) to the ensemble `{name}` and get
`SR` (uint8, N x 4H x 4W x 3).  `{name}_preprocess` prepares the inputs as `infer.py` does (Python backend),
`{plan_model}` runs the TensorRT plan (TensorRT backend, dynamic batching), `{name}_postprocess` turns its
output into images.

## Loading the TensorRT plugin

The plan holds `TTSRSearchTransfer` layers, so the server must load `{PLUGIN_FOLDER}/{plugin_name}` before it
deserialises the plan; either works:

```bash
# the TensorRT backend loads it (Triton >= 23.06):
tritonserver --model-repository=$PWD --backend-config=tensorrt,plugins=$PWD/{PLUGIN_FOLDER}/{plugin_name}
# or the process preloads it:
LD_PRELOAD=$PWD/{PLUGIN_FOLDER}/{plugin_name} tritonserver --model-repository=$PWD
```

The plugin library needs cuBLAS of the CUDA major it was built with, on the library path.

## The Python models

`{name}_preprocess` and `{name}_postprocess` import the `ttsr` package: install it into the Python that the
Python backend runs (`pip install ttsr-trt`, or an `EXECUTION_ENV_PATH` environment that has it).

## The engine ({plan_model}/engine.json is its sidecar)

TensorRT {sidecar.tensorrt_version}, built on {sidecar.gpu_name} (compute capability
{sidecar.compute_capability}, hardware compatibility `{sidecar.hardware_compatibility}`), precision
{sidecar.precision}. It runs only with that TensorRT version and on GPUs that level allows.  Accepted sizes:
{describe_limits(sidecar.profiles)}; larger requests get an error response.

{profiles}
"""


def onnx_readme(name: str) -> str:
    return f"""# TTSR model repository for Triton Inference Server, CPU (made by `ttsr export-triton --onnx`)

Clients send `LR` (uint8, N x H x W x 3) and `REF` (uint8, N x Hr x Wr x 3) to `{name}` and get `SR` (uint8,
N x 4H x 4W x 3).  `{name}` is a Python-backend model that prepares the inputs, runs `{name}/1/ttsr.onnx`
(the rewritten graph) in ONNX Runtime with the `TTSRSearchTransfer` node on the plugin's CPU twin, and
returns images.  The server's Python needs the ttsr package (`pip install ttsr-trt`).

Why not Triton's own onnxruntime backend: it loads custom operators only from a library that registers
them with ONNX Runtime's C API (`RegisterCustomOps`); the CPU twin is a plain C library that ttsr's ONNX
Runtime session calls through an onnxruntime-extensions Python operator, which a C++ backend cannot host.

```bash
tritonserver --model-repository=$PWD
```
"""
