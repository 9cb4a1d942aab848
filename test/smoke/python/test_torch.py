"""PyTorch (CPU) is importable and runs a forward pass."""
from conftest import interpreter, run_python

CODE = r"""
import torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
x = torch.ones(3, 4)
with torch.no_grad():
    y = model(x)
assert y.shape == (3, 2), y.shape
assert torch.isfinite(y).all()
print("torch", torch.__version__, tuple(y.shape), "cuda" if torch.cuda.is_available() else "cpu")
"""


def test_torch_forward():
    out = run_python(interpreter("pytorch"), CODE)
    assert out.startswith("torch "), out
    assert "(3, 2)" in out, out
