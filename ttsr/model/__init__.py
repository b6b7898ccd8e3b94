"""The PyTorch reference of TTSR (mmediting 0.x ``TTSR`` with ``TTSRNet``, ``LTE``, ``SearchTransformer``)."""

from ttsr.model.lte import LTE
from ttsr.model.search_transfer import SearchTransfer
from ttsr.model.ttsr import INPUT_NAMES, OUTPUT_NAME, TTSR, build_model
from ttsr.model.ttsr_net import TTSRNet
from ttsr.model.checkpoint import (CHECKPOINT_URLS, CheckpointError, load_checkpoint,
                                   load_state_dict_into, save_mmediting_checkpoint)

__all__ = ["LTE", "SearchTransfer", "TTSR", "TTSRNet", "build_model", "INPUT_NAMES", "OUTPUT_NAME",
           "CHECKPOINT_URLS", "CheckpointError", "load_checkpoint",
           "load_state_dict_into", "save_mmediting_checkpoint"]
