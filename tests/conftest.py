import torch

# Two cores here and in CI: more threads only contend.
torch.set_num_threads(2)
