"""Run TTSR on LR/Ref pairs and report latency and accuracy: ``python infer.py --help``."""
from ttsr.cli.infer import infer_command

if __name__ == "__main__":
    infer_command(prog_name="infer.py")
