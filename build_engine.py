"""Build a TensorRT engine for TTSR: ``python build_engine.py --help`` (or ``-h``)."""
from ttsr.cli.build_engine import build_engine_command

if __name__ == "__main__":
    # -h as in ``ttsr build-engine -h``, whose group passes it down; run alone, the command needs it here
    build_engine_command(prog_name="build_engine.py", help_option_names=["-h", "--help"])
