"""GPU benchmark and accuracy stage of the search-transfer kernels: what ``scripts/gpu_check.py`` runs.

* :mod:`ttsr.bench.features`: the block's test inputs and the whole model's test images;
* :mod:`ttsr.bench.accuracy`: kernels vs the PyTorch block, with the pass bars;
* :mod:`ttsr.bench.timing`: CUDA-event medians, CUDA-graph replay, out-of-memory as a note;
* :mod:`ttsr.bench.block`: latency / memory of the block (PyTorch FP32 and FP16, kernels FP32 and FP16);
* :mod:`ttsr.bench.kernel_profile`: per-kernel time breakdown from a torch.profiler trace;
* :mod:`ttsr.bench.whole_model`: TTSR with the kernels swapped in vs the PyTorch block, eager and graph;
* :mod:`ttsr.bench.memcheck`: compute-sanitizer memcheck of the kernels on small odd shapes;
* :mod:`ttsr.bench.targets`: issue #9's speed and memory targets against the measured figures.

Everything that needs no GPU (tables, verdicts, trace parsing, sanitizer output) is plain
Python, tested on the CPU with the host twin standing in for the kernels.
"""
