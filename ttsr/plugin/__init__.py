"""The TTSRSearchTransfer op outside PyTorch: the native host twin (:mod:`ttsr.plugin.native`)
and the locations of the CUDA and TensorRT plugin libraries built from ``plugins/``."""
