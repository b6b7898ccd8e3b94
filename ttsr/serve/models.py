"""The Triton Python-backend models; each repository's ``model.py`` re-exports one of them.

* :class:`TTSRModel` (``ttsr serve``): uint8 LR and Ref in, uint8 SR out; it prepares the inputs,
  runs the backend on batches of same-size pairs and converts the output back to an image.
* :class:`PreprocessModel` and :class:`PostprocessModel` (``ttsr export-triton``): the same
  preparation and conversion around a TensorRT plan, joined to it by an ensemble.

A request whose images are unusable gets an error response naming the problem; the others in the
same batch are served.  This module imports ``triton_python_backend_utils``, which only exists
inside the backend's stub process.

Tensors cross to and from the backend through DLPack only: the stubs' numpy glue is built for the
numpy 1 ABI, and under numpy 2 ``Tensor.as_numpy()`` returns zeros and ``Tensor(name, array)`` an
empty output (both seen with nvidia-pytriton 0.7.0's stubs and numpy 2.4).
"""

from __future__ import annotations

import dataclasses
import json
import platform
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.utils.dlpack
import triton_python_backend_utils as pb_utils

from ttsr.data.prepare import ModelInputs, prepare_pair, to_image
from ttsr.backends import failure_message
from ttsr.backends.profiles import ProfileError, choose_profile, format_size
from ttsr.errors import first_line
from ttsr.model.ttsr import OUTPUT_NAME
from ttsr.runtime.batching import plan_batches
from ttsr.serve.backend import open_served_backend
from ttsr.serve.spec import LR_INPUT, REF_INPUT, SPEC_PARAMETER, SR_OUTPUT, ServeSpec, describe_limits


class RequestError(ValueError):
    """One request cannot be served; the message goes back to its client."""


def check_python(expected: str | None) -> None:
    """Refuse to start under another Python than the server's (the stub would mix two builds)."""
    running = platform.python_version()
    if expected is not None and running != expected:
        raise RuntimeError(f"the Triton Python-backend stub runs Python {running}, ttsr serve runs {expected}: "
                           f"the stub loaded another libpython; start the server through `ttsr serve`")


def _spec(args: dict[str, Any]) -> ServeSpec:
    config = json.loads(args["model_config"])
    spec = ServeSpec.from_json(config["parameters"][SPEC_PARAMETER]["string_value"])
    check_python(spec.python)
    return spec


def _items(request: Any, name: str) -> np.ndarray:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        raise RequestError(f"input {name} is missing; send {LR_INPUT} and {REF_INPUT}")
    array: np.ndarray = np.from_dlpack(tensor)
    return array


def _tensor(name: str, array: np.ndarray) -> Any:
    # The capsule comes from torch, not numpy: the stub marks a consumed capsule "used_dlpack" where
    # DLPack says "used_dltensor", and numpy's capsule destructor then logs an error for every
    # response (harmless: the stub frees the tensor itself), while torch's leaves any renamed one alone.
    return pb_utils.Tensor.from_dlpack(name, torch.utils.dlpack.to_dlpack(torch.from_numpy(
        np.ascontiguousarray(array))))


def prepare_request(request: Any, spec: ServeSpec) -> list[ModelInputs]:
    """One prepared pair per batch item of ``request``; RequestError when its images cannot be served."""
    lrs, refs = _items(request, LR_INPUT), _items(request, REF_INPUT)
    if len(lrs) == 0:
        raise RequestError("the request holds no images; send a batch of at least one LR/Ref pair")
    if len(lrs) != len(refs):
        raise RequestError(f"{len(lrs)} LR image(s) but {len(refs)} Ref image(s); send one Ref per LR")
    pairs = []
    for lr, ref in zip(lrs, refs):
        ref_size = (ref.shape[0] - ref.shape[0] % 4, ref.shape[1] - ref.shape[1] % 4)
        if min(ref_size) >= 4:
            try:
                choose_profile(spec.profiles, (lr.shape[0], lr.shape[1]), ref_size)
            except ProfileError:
                raise RequestError(f"LR {format_size(lr.shape[:2])} with Ref {format_size(ref_size)} is outside "
                                   f"what this model takes ({describe_limits(spec.profiles)}); send smaller "
                                   f"images{spec.limit_hint}") from None
        try:
            pairs.append(prepare_pair(lr, ref))
        except ValueError as exc:
            raise RequestError(str(exc)) from None
    return pairs


def _error(message: str) -> Any:
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))


def _prepare_all(requests: Sequence[Any], spec: ServeSpec) -> tuple[list[Any], list[list[ModelInputs]]]:
    """Per request: an error response (or None) and its prepared pairs."""
    responses: list[Any] = [None] * len(requests)
    pairs: list[list[ModelInputs]] = [[] for _ in requests]
    for index, request in enumerate(requests):
        try:
            pairs[index] = prepare_request(request, spec)
        except RequestError as exc:
            responses[index] = _error(str(exc))
    return responses, pairs


class _Model:
    """Every request gets a response: an unexpected error answers the whole batch with its message
    instead of leaving the clients waiting."""

    def execute(self, requests: Sequence[Any]) -> list[Any]:
        try:
            return self.respond(requests)
        except Exception as exc:
            message = f"internal error: {type(exc).__name__}: {first_line(exc)}"
            return [_error(message) for _ in requests]

    def respond(self, requests: Sequence[Any]) -> list[Any]:
        raise NotImplementedError


class TTSRModel(_Model):
    """uint8 LR (N, H, W, 3) and Ref (N, Hr, Wr, 3) -> uint8 SR (N, 4H, 4W, 3) on the configured backend."""

    def initialize(self, args: dict[str, Any]) -> None:
        self.spec = _spec(args)
        if self.spec.backend is None:
            raise RuntimeError(f"{args['model_name']}: its config.pbtxt names no backend")
        backend = self.spec.backend
        if backend.onnx is not None and not Path(backend.onnx).is_absolute():
            # An exported repository names its graph relative to the model's folder.
            backend = dataclasses.replace(backend, onnx=str(Path(args["model_repository"]) / backend.onnx))
        self.kind = backend.kind
        self.backend = open_served_backend(backend)

    def respond(self, requests: Sequence[Any]) -> list[Any]:
        responses, pairs = _prepare_all(requests, self.spec)
        flat = [(index, inputs) for index, items in enumerate(pairs) for inputs in items]
        outputs: list[np.ndarray | None] = [None] * len(flat)
        failed: dict[int, str] = {}
        sizes = [(inputs.lr_size, inputs.ref_size) for _, inputs in flat]
        for batch in plan_batches(sizes, self.spec.max_batch, self.spec.profiles):
            try:
                sr = self.backend.run(ModelInputs.stack([flat[i][1] for i in batch.indices]))
            except Exception as exc:  # the backend's own errors: fail this batch's requests, serve the rest
                for i in batch.indices:
                    failed[flat[i][0]] = failure_message(self.kind, exc)
                continue
            for position, i in enumerate(batch.indices[:batch.real]):
                outputs[i] = to_image(sr[position])
        for index in range(len(requests)):
            if responses[index] is not None:
                continue
            if index in failed:
                responses[index] = _error(failed[index])
                continue
            images = np.stack([out for (owner, _), out in zip(flat, outputs) if owner == index and out is not None])
            responses[index] = pb_utils.InferenceResponse(output_tensors=[_tensor(SR_OUTPUT, images)])
        return responses

    def finalize(self) -> None:
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()


class PreprocessModel(_Model):
    """uint8 LR and Ref -> the four float32 TTSR inputs, for the TensorRT plan of the ensemble."""

    def initialize(self, args: dict[str, Any]) -> None:
        self.spec = _spec(args)

    def respond(self, requests: Sequence[Any]) -> list[Any]:
        responses, pairs = _prepare_all(requests, self.spec)
        for index, items in enumerate(pairs):
            if responses[index] is None:
                inputs = ModelInputs.stack(items)
                responses[index] = pb_utils.InferenceResponse(
                    output_tensors=[_tensor(name, array) for name, array in inputs.as_dict().items()])
        return responses


class PostprocessModel(_Model):
    """The plan's float32 SR in [-1, 1] -> uint8 images."""

    def initialize(self, args: dict[str, Any]) -> None:
        _spec(args)

    def respond(self, requests: Sequence[Any]) -> list[Any]:
        responses = []
        for request in requests:
            sr = _items(request, OUTPUT_NAME)
            images = np.stack([to_image(item) for item in sr])
            responses.append(pb_utils.InferenceResponse(output_tensors=[_tensor(SR_OUTPUT, images)]))
        return responses

