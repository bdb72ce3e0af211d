"""The quantum engine: everything that turns a quantum block into numbers and gradients.

Layout:
    block.py       the quantum block's fields and validation (the spec embeds it)
    circuits.py    the circuit IR, its builders from a block, readout plans, the weight layout
    pauli.py       Pauli matrices, term grouping, marginals
    noise.py       noise models, readout error, shot sampling
    targets.py     the target table with each target's declared capabilities
    plan.py        ExecutionConfig and resolve(config, block) -> ExecutionPlan
    gradients/     one module per gradient method, and their registry
    executors/     torch statevector (kernels, program, adjoint sweep), torch density matrix, CUDA-Q
    layer.py       QuantumLayer, the torch module
    function.py    CircuitFunction, a block as a plain function of its weights

Nothing here imports from outside `workbench.engine`; the spec, training, GUI, CLI and bench import it.
"""

from .block import Quantum, SpecError, quantum_block
from .function import CircuitFunction, circuit_function, expectation
from .gradients import GradientError, method_names, method_summaries
from .layer import QuantumLayer
from .plan import ExecutionConfig, ExecutionPlan, ResourceError, resolve
from .targets import TARGETS, Target, TargetError

__all__ = ["TARGETS", "CircuitFunction", "ExecutionConfig", "ExecutionPlan", "GradientError", "Quantum",
           "QuantumLayer", "ResourceError", "SpecError", "Target", "TargetError", "circuit_function", "expectation",
           "method_names", "method_summaries", "quantum_block", "resolve"]
