"""The benchmark circuit as a plain CUDA-Q kernel (a module of its own: @cudaq.kernel reads the source file).

thetas = [x_0 .. x_{n-1}, w_0 .. w_{4n-1}]; w index 2·n·layer + 2·qubit + rotation (0: RY, 1: RZ).
"""

from __future__ import annotations

from ..engine.executors import cudaq_runtime  # noqa: F401  (imports cudaq quietly, away from our argv)

import cudaq  # noqa: E402


@cudaq.kernel
def workload(n: int, thetas: list[float]):
    q = cudaq.qvector(n)
    for i in range(n):
        ry(thetas[i], q[i])
    for layer in range(2):
        for i in range(n):
            ry(thetas[n + 2 * n * layer + 2 * i], q[i])
            rz(thetas[n + 2 * n * layer + 2 * i + 1], q[i])
        if n > 2:
            for i in range(n):
                x.ctrl(q[i], q[(i + 1) % n])
        else:
            x.ctrl(q[0], q[1])
