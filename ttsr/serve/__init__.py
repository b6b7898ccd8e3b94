"""Serving on Triton Inference Server: model repositories, the server process, and a load client.

* :mod:`ttsr.serve.config` writes ``config.pbtxt`` text (Triton's model-configuration protobuf).
* :mod:`ttsr.serve.repository` lays out model repositories: the one ``ttsr serve`` runs and the GPU-fleet
  one of ``ttsr export-triton``.
* :mod:`ttsr.serve.models` holds the Python-backend models those repositories load.
* :mod:`ttsr.serve.server` finds the ``tritonserver`` that ``nvidia-pytriton`` ships and runs it.
* :mod:`ttsr.serve.bench` sends bounded loads to a server and summarises latency.
"""
