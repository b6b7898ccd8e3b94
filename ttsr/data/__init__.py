"""Image I/O, input preparation (mmediting 0.x protocol and inference pairs) and pair discovery."""

from ttsr.data.images import ImageError, load_image, save_image
from ttsr.data.pairs import Pair, PairError, find_pairs, read_pair_list
from ttsr.data.prepare import ModelInputs, crop_like, prepare_eval, prepare_pair, resize_bicubic, to_image

__all__ = ["ImageError", "load_image", "save_image", "Pair", "PairError", "find_pairs", "read_pair_list",
           "ModelInputs", "crop_like", "prepare_eval", "prepare_pair", "resize_bicubic", "to_image"]
