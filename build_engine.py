"""Build a TensorRT engine for TTSR: ``python build_engine.py --help``."""
from ttsr.cli.build_engine import build_engine_command

if __name__ == "__main__":
    build_engine_command(prog_name="build_engine.py")
