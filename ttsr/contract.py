"""The search-transfer contract: the single definition of the ``TTSRSearchTransfer`` op.

Every implementation is tested against the PyTorch reference block
(:class:`ttsr.model.search_transfer.SearchTransfer`) under this contract:
the graph rewrite (``ttsr.surgery``), the CPU twin (``plugins/``, called by the
ONNX Runtime backend), the CUDA kernels and the TensorRT plugin.  The C++ side
mirrors the constants below in ``plugins/search_transfer/contract.h``; a test
checks that both agree.

Inputs (all the same dtype, float32 or float16, linear NCHW, batch N >= 1)
--------------------------------------------------------------------------
==========  ==================  =================================================
name        shape               meaning
==========  ==================  =================================================
``q``       (N, Ck, H, W)       query features: LTE relu3_1 of ``lq_up`` (LR grid)
``k``       (N, Ck, Hr, Wr)     key features: LTE relu3_1 of ``ref_downup``
``v3``      (N, C3, Hr, Wr)     value level 3: LTE relu3_1 of ``ref`` (x1)
``v2``      (N, C2, 2Hr, 2Wr)   value level 2: LTE relu2_1 of ``ref`` (x2)
``v1``      (N, C1, 4Hr, 4Wr)   value level 1: LTE relu1_1 of ``ref`` (x4)
==========  ==================  =================================================

For TTSR, Ck = C3 = 256, C2 = 128, C1 = 64, but no implementation may assume
channel counts.  H, W, Hr, Wr >= 1 and are independent (Ref may be larger,
smaller or of another aspect ratio than LR).

Outputs (same dtype as the inputs)
----------------------------------
==========  ==================  =================================================
``s``       (N, 1, H, W)        soft attention: the best relevance per LR position
``t3``      (N, C3, H, W)       transferred texture at x1
``t2``      (N, C2, 2H, 2W)     transferred texture at x2
``t1``      (N, C1, 4H, 4W)     transferred texture at x4
==========  ==================  =================================================

Semantics (per image n; p = y*W + x indexes LR positions, j = r*Wr + c Ref positions)
-------------------------------------------------------------------------------------
1. Patches.  ``patch(F, y, x)`` is the Ck*9 vector of F[:, y+dy, x+dx] for
   dy, dx in {-1, 0, 1}, zero where the position falls outside the grid (zero
   padding), laid out channel-major, then dy, then dx (PyTorch im2col order).
2. Normalisation.  ``qn_p = patch(q, p) / max(||patch(q, p)||_2, 1e-12)``, and
   ``kn_j`` likewise from ``k``.  All-zero patches stay zero.
3. Relevance.  ``R[j, p] = <kn_j, qn_p>`` (cosine similarity).
4. Hard attention.  ``idx[p] = argmax_j R[j, p]``; among equal maxima the
   **lowest j** wins.  ``s[p] = R[idx[p], p]``, raw (no sigmoid, no clamp).
5. Texture transfer, for each level with scale f = 1, 2, 4 (t3, t2, t1):
   the LR position p = (py, px) with source j = (r, c) = idx[p] contributes the
   (3f x 3f) window of v_f whose top-left corner is (f*r - f, f*c - f), placed
   with its top-left at (f*py - f, f*px - f) in the output; samples outside
   either grid are zero.  The output is the sum of all contributions divided
   by 9, **including the border band** (f pixels wide) where fewer than 9
   windows overlap.  Equivalently, as a gather: output pixel (Y, X) receives,
   for each py in {Y//f - 1, Y//f, Y//f + 1} and px likewise that lie inside
   the LR grid, the value v_f[:, f*r + (Y - f*py), f*c + (X - f*px)] with
   (r, c) = idx[(py, px)], zero where that lies outside the Ref grid.

Precision
---------
* float32 tensors: float32 arithmetic throughout (no TF32).  Outputs match the
  PyTorch reference to 1e-5 absolute where the argmax agrees.  Where two Ref
  positions are within rounding of each other (|R1 - R2| < 1e-6), either may be
  chosen; tests compare such positions by the relevance of the chosen index.
* float16 tensors: inputs and outputs float16; norms, dot products and the
  texture sums accumulate in float32; normalised patches may be stored in
  float16 (they lie in [-1, 1]).
* Any order of summation is allowed.  In particular an implementation may
  compute <patch(k, j), patch(q, p)> as the sum over the 9 offsets of the
  pixel dot products <k[j + o], q[p + o]> (a Gram matrix over Ck, the CPU twin
  and the CUDA default path) and divide by the two patch norms afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

OP_TYPE = "TTSRSearchTransfer"
DOMAIN = "trt.plugins"
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = ""

INPUT_NAMES = ("q", "k", "v3", "v2", "v1")
OUTPUT_NAMES = ("s", "t3", "t2", "t1")

PATCH_SIZE = 3
LEVEL_SCALES = (1, 2, 4)
FOLD_DIVISOR = 9.0
NORM_EPS = 1e-12

# Attribute name -> default.  The TensorRT ONNX parser turns INT attributes into
# kINT32 plugin fields and FLOAT into kFLOAT32; ONNX Runtime custom ops get them
# as int64 / float.  ``ref_chunk`` = 0 lets the implementation choose how many
# Ref positions it scores at once (bounding its workspace); a positive value
# caps that chunk.
ATTRIBUTES: dict[str, int | float] = {
    "patch_size": PATCH_SIZE,
    "fold_divisor": FOLD_DIVISOR,
    "ref_chunk": 0,
}

# A field of the TensorRT plugin, not an op attribute (results do not depend on
# it, so the rewrite does not write it): MiB that one tile's Gram (or relevance)
# block of the CUDA kernels may take, 0 = the kernels' default (1 GiB,
# TTSR_ST_DEFAULT_WORKSPACE_BUDGET).
# ``build_engine.py --workspace-budget`` sets it on the graph it builds and
# records it in the sidecar.  Accepted range: 0 .. MAX_WORKSPACE_BUDGET_MIB.
WORKSPACE_BUDGET_FIELD = "workspace_budget_mib"
MAX_WORKSPACE_BUDGET_MIB = 1 << 20


@dataclass(frozen=True)
class Shapes:
    """Input sizes of one call; output shapes follow from them."""

    n: int
    ck: int
    h: int
    w: int
    hr: int
    wr: int
    c3: int
    c2: int
    c1: int

    @classmethod
    def from_inputs(cls, q: Any, k: Any, v3: Any, v2: Any, v1: Any) -> "Shapes":
        """Read and validate the sizes of the five inputs (anything with ``.shape``)."""
        n, ck, h, w = (int(d) for d in q.shape)
        shapes = cls(n, ck, h, w, int(k.shape[2]), int(k.shape[3]),
                     int(v3.shape[1]), int(v2.shape[1]), int(v1.shape[1]))
        shapes.check(q, k, v3, v2, v1)
        return shapes

    def expected_inputs(self) -> tuple[tuple[int, ...], ...]:
        n, hr, wr = self.n, self.hr, self.wr
        return ((n, self.ck, self.h, self.w), (n, self.ck, hr, wr), (n, self.c3, hr, wr),
                (n, self.c2, 2 * hr, 2 * wr), (n, self.c1, 4 * hr, 4 * wr))

    def outputs(self) -> tuple[tuple[int, ...], ...]:
        n, h, w = self.n, self.h, self.w
        return ((n, 1, h, w), (n, self.c3, h, w), (n, self.c2, 2 * h, 2 * w),
                (n, self.c1, 4 * h, 4 * w))

    def check(self, *inputs: Any) -> None:
        for name, tensor, want in zip(INPUT_NAMES, inputs, self.expected_inputs()):
            got = tuple(int(d) for d in tensor.shape)
            if got != want:
                raise ValueError(
                    f"{OP_TYPE}: input {name!r} has shape {got}, expected {want} "
                    f"(see ttsr/contract.py)")
        if min(self.h, self.w, self.hr, self.wr) < 1:
            raise ValueError(f"{OP_TYPE}: empty LR or Ref grid {self}")
