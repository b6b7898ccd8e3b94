"""Send one LR/Ref pair to a TTSR Triton server and save the SR image (tritonclient, HTTP or gRPC).

    python examples/triton_client.py --url 127.0.0.1:8000 --lr lr.png --ref ref.png --out sr.png
    python examples/triton_client.py --url 127.0.0.1:8001 --protocol grpc --lr lr.png --ref ref.png --out sr.png

Works with `ttsr serve` and with a repository from `ttsr export-triton` (the ensemble takes the same
tensors): LR and REF are uint8 N x H x W x 3 RGB, SR comes back as uint8 N x 4H x 4W x 3.  Needs only
numpy, Pillow and tritonclient[http,grpc].
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from PIL import Image


def load_rgb(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def super_resolve(url: str, protocol: str, model: str, lr: np.ndarray, ref: np.ndarray) -> np.ndarray:
    if protocol == "http":
        import tritonclient.http as client
    else:
        import tritonclient.grpc as client  # type: ignore[no-redef]
    server = client.InferenceServerClient(url)
    try:
        if not server.is_model_ready(model):
            raise SystemExit(f"model {model!r} is not ready on {url}")
        inputs = []
        for name, image in (("LR", lr), ("REF", ref)):
            tensor = client.InferInput(name, [1, *image.shape], "UINT8")
            tensor.set_data_from_numpy(image[None])
            inputs.append(tensor)
        result = server.infer(model, inputs, outputs=[client.InferRequestedOutput("SR")])
        sr: np.ndarray = result.as_numpy("SR")[0]
        return sr
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="127.0.0.1:8000", help="host:port of the HTTP or gRPC endpoint")
    parser.add_argument("--protocol", choices=("http", "grpc"), default="http")
    parser.add_argument("--model", default="ttsr")
    parser.add_argument("--lr", required=True, help="LR image")
    parser.add_argument("--ref", required=True, help="Ref image")
    parser.add_argument("--out", required=True, help="where to write the SR image (PNG)")
    args = parser.parse_args()
    try:
        sr = super_resolve(args.url, args.protocol, args.model, load_rgb(args.lr), load_rgb(args.ref))
    except Exception as exc:  # tritonclient's InferenceServerException carries the server's message
        sys.exit(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    Image.fromarray(sr).save(args.out)
    print(f"SR {sr.shape[0]}x{sr.shape[1]} written to {args.out}")


if __name__ == "__main__":
    main()
