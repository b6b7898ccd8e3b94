"""Image quality metrics in the mmediting conventions."""

from ttsr.metrics.quality import CONVENTIONS, SSIM_MODES, psnr, score, ssim

__all__ = ["CONVENTIONS", "SSIM_MODES", "psnr", "score", "ssim"]
