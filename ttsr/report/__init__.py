"""Report stage: what a run is judged by and shown as.

* :mod:`ttsr.report.accuracy`: PSNR/SSIM rows, means, Polygraphy-style error statistics, the accuracy table.
* :mod:`ttsr.report.gate`: accuracy and latency limits of one run, checked in one table.
* :mod:`ttsr.report.compare`: two runs' reports side by side (``ttsr compare``).
* :mod:`ttsr.report.panels`, :mod:`ttsr.report.plots`, :mod:`ttsr.report.site`: the PNG panels, the
  latency picture and the static ``index.html`` of ``infer --report``.
* :mod:`ttsr.report.outputs`: output paths checked before the run, written atomically, removed on failure.
* :mod:`ttsr.report.machine`: CPU, GPU, library versions, threads and time of the run.
"""
