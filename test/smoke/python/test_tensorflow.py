"""TensorFlow (tensorflow-cpu) is importable and runs a forward pass."""
from conftest import interpreter, run_python

CODE = r"""
import tensorflow as tf
tf.random.set_seed(0)
model = tf.keras.Sequential([tf.keras.Input(shape=(4,)), tf.keras.layers.Dense(8, activation="relu"), tf.keras.layers.Dense(2)])
y = model(tf.ones((3, 4)))
assert tuple(y.shape) == (3, 2), y.shape
assert bool(tf.reduce_all(tf.math.is_finite(y)))
print("tensorflow", tf.__version__, tuple(y.shape))
"""


def test_tensorflow_forward():
    out = run_python(interpreter("tensorflow"), CODE)
    assert out.startswith("tensorflow "), out
    assert "(3, 2)" in out, out
