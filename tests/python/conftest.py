# The spattn package is found through PYTHONPATH=<build>/python (set by ctest, see
# tests/CMakeLists.txt). Nothing to configure here beyond a fixed NumPy seed per test.
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
