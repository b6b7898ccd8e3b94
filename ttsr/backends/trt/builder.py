"""Build a TensorRT engine from the rewritten TTSR graph (TensorRT 10.x and 11.x).

Precision lives in the graph (made by ``ttsr.pipeline``): an FP16 engine is
built strongly typed from the FP16 graph, an FP32 engine from the FP32 graph.  The
weakly typed FP16 flag is used only when asked for and only where the installed
TensorRT still has it (removed in 11.0).

The steps take the TensorRT module as their first argument (``tensorrt``), so
the tests can run them against TensorRT-RTX, whose Python API is TensorRT's
and which builds engines on a machine without a GPU.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ttsr import contract, tool_version
from ttsr.atomic import file_sha256, write_bytes_atomic
from ttsr.backends.profiles import REF_MULTIPLE, Profile, Shape, check_graph_inputs
from ttsr.backends.trt.checks import BuildError, check_hardware_compat, require_gpu, require_tensorrt
from ttsr.backends.trt.plugin import load_plugin_library
from ttsr.backends.trt.sidecar import (HARDWARE_COMPAT_LEVELS, EngineSidecar, PluginInfo, PluginMemory,
                                       write_sidecar)
from ttsr.contract import Shapes
from ttsr.onnx_io import inspect_onnx

if TYPE_CHECKING:
    import tensorrt as trt

PRECISIONS = ("fp16", "fp32")
FEATURE_CHANNELS = (256, 256, 128, 64)  # ck, c3, c2, c1 of the plugin inputs: TTSR's LTE levels


def plugin_memory(profile: Profile, precision: str, budget_mib: int = 0) -> PluginMemory:
    """The plugin's workspace for ``profile`` and its Ref chunk at the profile's largest shape.

    Computed as the plugin's getWorkspaceSize does it, at the profile's largest shape (the
    workspace is non-decreasing in every size), on the CPU twin library, which shares the kernels' plan.
    Raises NativeLibraryError when that library is missing.
    """
    from ttsr.plugin.native import chunk_size, workspace_size

    dtype = np.float16 if precision == "fp16" else np.float32
    ref_chunk = int(contract.ATTRIBUTES["ref_chunk"])  # the value the graph rewrite writes
    ck, c3, c2, c1 = FEATURE_CHANNELS
    hr, wr = (side // REF_MULTIPLE for side in profile.ref_max)

    largest = Shapes(profile.batch_max, ck, *profile.lr_max, hr, wr, c3, c2, c1)
    try:
        workspace = workspace_size(largest, dtype, ref_chunk, budget=budget_mib << 20)
        chunk = chunk_size(largest, dtype, ref_chunk, budget=budget_mib << 20)
    except ValueError as exc:
        raise BuildError(f"profile {profile.describe()}: {exc}; use a smaller profile") from None
    return PluginMemory(workspace, chunk, hr * wr, budget_mib)


def with_workspace_budget(onnx_path: Path, budget_mib: int, workdir: str | Path) -> Path:
    """``onnx_path`` for budget 0 (the plugin's default), else a copy in ``workdir`` whose plugin nodes
    carry the plugin field ``contract.WORKSPACE_BUDGET_FIELD``, which the ONNX parser hands to the plugin."""
    if budget_mib == 0:
        return onnx_path
    import onnx

    model = onnx.load(onnx_path)
    for node in model.graph.node:
        if node.op_type == contract.OP_TYPE and node.domain == contract.DOMAIN:
            kept = [a for a in node.attribute if a.name != contract.WORKSPACE_BUDGET_FIELD]
            del node.attribute[:]
            node.attribute.extend(kept)
            node.attribute.append(onnx.helper.make_attribute(contract.WORKSPACE_BUDGET_FIELD, budget_mib))
    budgeted = Path(workdir) / f"{onnx_path.stem}.budget.onnx"
    onnx.save(model, budgeted)
    return budgeted


@dataclass
class BuildOptions:
    onnx_path: Path
    output: Path
    profiles: list[Profile]
    plugin_library: Path
    precision: str = "fp16"
    workspace_mib: int | None = None
    workspace_budget_mib: int = 0  # the plugin's contract.WORKSPACE_BUDGET_FIELD; 0 = the kernels' default
    timing_cache: Path | None = None
    optimization_level: int | None = None
    hardware_compatibility: str = "none"
    weak_fp16: bool = False
    checkpoint_sha256: str | None = None
    seed: int | None = None
    extra: dict[str, str] = field(default_factory=dict)


def check_options(options: BuildOptions) -> None:
    """Everything that can be checked without TensorRT: precision, profiles vs the graph."""
    if options.precision not in PRECISIONS:
        raise BuildError(f"precision {options.precision!r} is not one of {', '.join(PRECISIONS)}")
    if options.hardware_compatibility not in HARDWARE_COMPAT_LEVELS:
        raise BuildError(f"hardware compatibility {options.hardware_compatibility!r} is not one of "
                         f"{', '.join(HARDWARE_COMPAT_LEVELS)}")
    if options.optimization_level is not None and not 0 <= options.optimization_level <= 5:
        raise BuildError(f"builder optimisation level {options.optimization_level} is not in 0..5")
    if not options.profiles:
        raise BuildError("no optimisation profile given")
    info = inspect_onnx(options.onnx_path)
    if not info.rewritten:
        raise BuildError(f"{options.onnx_path} has no {contract.OP_TYPE} node; TensorRT cannot parse "
                         f"the plain export: rewrite it with `python -m ttsr.cli export --rewrite`")
    want = "fp32" if options.weak_fp16 else options.precision
    if info.precision != want:
        raise BuildError(f"{options.onnx_path} is an {info.precision.upper()} graph but a strongly typed "
                         f"{options.precision} build needs the {want.upper()} graph (ttsr.surgery.fp16)")
    for profile in options.profiles:
        check_graph_inputs(profile, info.inputs)


def network_flags(tensorrt: ModuleType, weak_fp16: bool = False) -> int:
    """``create_network`` flags: strongly typed unless the weakly typed FP16 build is asked for."""
    return 0 if weak_fp16 else 1 << int(tensorrt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def parse_onnx(tensorrt: ModuleType, network: "trt.INetworkDefinition", logger: "trt.ILogger",
               onnx_path: Path) -> "trt.OnnxParser":
    """Parse ``onnx_path`` into ``network``; BuildError listing the parser's errors.

    The parser owns the weights the network refers to: keep it until the build is done.
    """
    parser: "trt.OnnxParser" = tensorrt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = " | ".join(str(parser.get_error(i)).replace("\n", " ")
                            for i in range(parser.num_errors))
        raise BuildError(f"TensorRT could not parse {onnx_path}: {errors}")
    return parser


def create_config(tensorrt: ModuleType, builder: "trt.Builder", options: BuildOptions
                  ) -> tuple["trt.IBuilderConfig", "trt.ITimingCache | None"]:
    """The builder config of ``options`` without its profiles (see :func:`add_profile`)."""
    config = builder.create_builder_config()
    if options.workspace_mib is not None:
        config.set_memory_pool_limit(tensorrt.MemoryPoolType.WORKSPACE, options.workspace_mib << 20)
    if options.optimization_level is not None:
        config.builder_optimization_level = options.optimization_level
    level = options.hardware_compatibility.upper()
    # "none" is TensorRT's default; leaving it unset spares TensorRT-RTX, which has no such
    # levels, a warning.
    if level != "NONE":
        if not hasattr(tensorrt.HardwareCompatibilityLevel, level):
            raise BuildError(f"TensorRT {tensorrt.__version__} has no hardware-compatibility level "
                             f"{level}; choose another --hardware-compat")
        config.hardware_compatibility_level = getattr(tensorrt.HardwareCompatibilityLevel, level)
    if options.weak_fp16:
        config.set_flag(tensorrt.BuilderFlag.FP16)
    cache = None
    if options.timing_cache is not None:
        blob = options.timing_cache.read_bytes() if options.timing_cache.is_file() else b""
        cache = config.create_timing_cache(blob)
        if not config.set_timing_cache(cache, ignore_mismatch=False):
            raise BuildError(f"timing cache {options.timing_cache} was made by another TensorRT or GPU; "
                             f"delete it or give another --timing-cache path")
    return config, cache


def add_profile(tensorrt: ModuleType, builder: "trt.Builder", config: "trt.IBuilderConfig",
                shapes: Mapping[str, tuple[Shape, Shape, Shape]]) -> None:
    """Add one optimisation profile: input name -> (min, opt, max) shape, as :meth:`Profile.shapes` gives."""
    trt_profile = builder.create_optimization_profile()
    for name, (low, opt, high) in shapes.items():
        trt_profile.set_shape(name, *(tensorrt.Dims(list(shape)) for shape in (low, opt, high)))
    config.add_optimization_profile(trt_profile)


def build_engine(options: BuildOptions) -> EngineSidecar:
    """Build and write ``options.output`` and its sidecar; returns the sidecar."""
    check_options(options)
    version = require_tensorrt()
    import tensorrt as trt

    from ttsr.plugin.native import NativeLibraryError

    if options.weak_fp16 and not hasattr(trt.BuilderFlag, "FP16"):
        raise BuildError(f"TensorRT {version} has no weakly typed FP16 flag (removed in "
                         f"11.0); build strongly typed from the FP16 graph (drop --weak-fp16)")
    gpu = require_gpu()
    check_hardware_compat(options.hardware_compatibility, gpu)
    # The plugin logs its workspace at INFO, which the WARNING logger drops: compute it here.
    try:
        memory = [plugin_memory(profile, options.precision, options.workspace_budget_mib)
                  for profile in options.profiles]
    except NativeLibraryError:
        memory = []
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    load_plugin_library(builder.get_plugin_registry(), options.plugin_library)

    network = builder.create_network(network_flags(trt, options.weak_fp16))
    with tempfile.TemporaryDirectory(prefix="ttsr-budget-") as workdir:
        graph = with_workspace_budget(options.onnx_path, options.workspace_budget_mib, workdir)
        parser = parse_onnx(trt, network, logger, graph)
    config, cache = create_config(trt, builder, options)
    for profile in options.profiles:
        add_profile(trt, builder, config, profile.shapes())

    serialized = builder.build_serialized_network(network, config)
    del parser
    if serialized is None:
        raise BuildError("TensorRT failed to build the engine (see its log above); try a smaller "
                         "profile or a larger --workspace")
    engine = bytes(serialized)
    write_bytes_atomic(options.output, engine)
    if cache is not None and options.timing_cache is not None:
        write_bytes_atomic(options.timing_cache, bytes(config.get_timing_cache().serialize()))

    sidecar = EngineSidecar(
        tensorrt_version=version,
        gpu_name=gpu.name,
        compute_capability=gpu.compute_capability,
        precision=("fp16-weak" if options.weak_fp16 else options.precision),
        hardware_compatibility=options.hardware_compatibility,
        profiles=list(options.profiles),
        plugin=PluginInfo(contract.OP_TYPE, contract.PLUGIN_VERSION, str(options.plugin_library.resolve()),
                          file_sha256(options.plugin_library)),
        onnx_sha256=file_sha256(options.onnx_path),
        engine_sha256=hashlib.sha256(engine).hexdigest(),
        plugin_memory=memory,
        checkpoint_sha256=options.checkpoint_sha256,
        seed=options.seed,
        build_time=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        tool_version=tool_version(),
        extra=dict(options.extra),
    )
    write_sidecar(options.output, sidecar)
    return sidecar
