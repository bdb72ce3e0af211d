"""Run circuits of the IR on CUDA-Q.

One generic interpreter kernel per executor, compiled once for every circuit structure: the gate list
travels as arguments (codes, wires, angles). A batch is one broadcast `observe` with every observable
in that call, or one `sample`; states for the adjoint method are requested for the whole batch with
`get_state_async` before the first is read. Each executor makes its own kernel object, so one model's
compiled variants never evict another's.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Callable

import numpy as np
import torch

from .. import progress
from ..circuits import Circuit, ReadoutPlan
from ..noise import NoiseModel, sample_shots
from ..pauli import density_expectation, marginal_index
from ..plan import ExecutionPlan
from .base import Executor
from .cudaq_device import hands_off_on_device, stack_states
from .cudaq_runtime import call, check_target, dispose, target_config

MQPU_TARGETS = ("nvidia-mqpu", "nvidia-mqpu-fp64")  # one simulated QPU per GPU: batches spread over them
PROGRESS_CHUNK = 16  # rows per call on shot-based hardware targets, so progress shows within a step
GATE_CODES = {"h": 0, "x": 1, "y": 2, "z": 3, "s": 4, "t": 5, "rx": 6, "ry": 7, "rz": 8, "cx": 9, "cz": 10, "swap": 11,
              "u3": 12}

_BODY = """
    for i in range(len(codes)):
        c = codes[i]
        if c == 0:
            h(q[q0[i]])
        elif c == 1:
            x(q[q0[i]])
        elif c == 2:
            y(q[q0[i]])
        elif c == 3:
            z(q[q0[i]])
        elif c == 4:
            s(q[q0[i]])
        elif c == 5:
            t(q[q0[i]])
        elif c == 6:
            rx(theta[i], q[q0[i]])
        elif c == 7:
            ry(theta[i], q[q0[i]])
        elif c == 8:
            rz(theta[i], q[q0[i]])
        elif c == 9:
            x.ctrl(q[q0[i]], q[q1[i]])
        elif c == 10:
            z.ctrl(q[q0[i]], q[q1[i]])
        elif c == 11:
            swap(q[q0[i]], q[q1[i]])
"""
# A fused run of single-qubit gates: u3(θ, φ, λ) with its three angles at i, i + G and i + 2G of theta.
_U3 = """        elif c == 12:
            u3(theta[i], theta[i + len(codes)], theta[i + 2 * len(codes)], q[q0[i]])
"""
_PLAIN = "def {name}(n: int, codes: list[int], q0: list[int], q1: list[int], theta: list[float]):\n" \
         "    q = cudaq.qvector(n)\n"
_AMPLITUDE = "def {name}(init: list[complex], codes: list[int], q0: list[int], q1: list[int], theta: list[float]):\n" \
             "    q = cudaq.qvector(init)\n"
_serial = itertools.count()


def fused_layout(circuit: Circuit) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """(gate, wires, circuit gate indices) with every run of single-qubit gates on one qubit as one 'u3'.

    The simulators' cost is per gate (about 0.65 ms per gate at 12 qubits on qpp-cpu, whatever the gate),
    so a hardware-efficient layer's encoding, RY and RZ on a qubit cost one gate instead of three.
    """
    pending: dict[int, list[int]] = {}
    layout: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []

    def flush(qubit: int) -> None:
        run = pending.pop(qubit, None)
        if run:
            layout.append(("u3", (qubit,), tuple(run)))

    for index, gate in enumerate(circuit.gates):
        if len(gate.wires) == 1:
            pending.setdefault(gate.wires[0], []).append(index)
            continue
        for wire in gate.wires:
            flush(wire)
        layout.append((gate.name, gate.wires, (index,)))
    for qubit in sorted(pending):
        flush(qubit)
    return layout


def u3_angles(matrices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., 2, 2) unitaries → ((..., 3) angles (θ, φ, λ), (...) phase α) with U = e^{iα} u3(θ, φ, λ).

    u3(θ, φ, λ) = [[cos θ/2, -e^{iλ} sin θ/2], [e^{iφ} sin θ/2, e^{i(φ+λ)} cos θ/2]]. The kernel runs u3
    alone; `states()` puts the phases back, so states match the circuit's exactly.
    """
    a, b, c, d = matrices[..., 0, 0], matrices[..., 0, 1], matrices[..., 1, 0], matrices[..., 1, 1]
    theta = 2 * torch.atan2(c.abs(), a.abs())
    # Phases: arg a = α, arg c = α + φ, arg d = α + φ + λ, arg(-b) = α + λ. Each angle comes from the larger
    # entries, so a phase read from a vanishing entry only multiplies that vanishing entry.
    alpha = torch.angle(a)
    phi = torch.angle(c) - alpha
    lam = torch.where(a.abs() >= c.abs(), torch.angle(d) - torch.angle(c), torch.angle(-b) - alpha)
    return torch.stack([theta, phi, lam], -1), alpha


def pauli_operator(cudaq, pauli: str):
    factors = {"X": cudaq.spin.x, "Y": cudaq.spin.y, "Z": cudaq.spin.z}
    op = None
    for q, ch in enumerate(pauli):
        if ch != "I":
            op = factors[ch](q) if op is None else op * factors[ch](q)
    return op


def _noise(cudaq, model) -> None:
    """Set (or with None clear) CUDA-Q's process-wide noise model; callers hold the session lock.

    get_state takes no noise_model argument in 0.16, so set_noise is the only way; its deprecation warning
    is expected here and silenced.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if model is None:
            cudaq.unset_noise()
        else:
            cudaq.set_noise(model)


def cudaq_noise_model(cudaq, model: NoiseModel):
    """The same gate noise as a cudaq.NoiseModel (readout error is applied to the results instead)."""
    noise = cudaq.NoiseModel()
    singles = []
    if model.depolarizing:
        singles.append(lambda: cudaq.DepolarizationChannel(model.depolarizing))
    if model.amplitude_damping:
        singles.append(lambda: cudaq.AmplitudeDampingChannel(model.amplitude_damping))
    if model.bit_flip:
        singles.append(lambda: cudaq.BitFlipChannel(model.bit_flip))
    if model.phase_flip:
        singles.append(lambda: cudaq.PhaseFlipChannel(model.phase_flip))
    for gate in ("h", "x", "y", "z", "s", "t", "rx", "ry", "rz"):
        for make in singles:
            noise.add_all_qubit_channel(gate, make())
    if model.depolarizing2:
        # Circuits lower swap to three CNOTs (CUDA-Q rejects a channel on swap), so cx and cz are all there is.
        for gate in ("x", "z"):
            noise.add_all_qubit_channel(gate, cudaq.Depolarization2(model.depolarizing2), num_controls=1)
    return noise


class CudaqExecutor(Executor):
    """Evaluates a circuit's readout and states on one CUDA-Q target (the plan has checked the combination)."""

    warm_up = True

    @property
    def phase_known(self) -> bool:
        return not self.plan.target.density_matrix  # a state read from ρ has no global phase of its own

    def __init__(self, circuit: Circuit, readout_plan: ReadoutPlan, plan: ExecutionPlan):
        super().__init__(circuit, readout_plan, plan)
        target = target_config(plan)
        check_target(target)  # before anything selects it: tensornet without a GPU aborts the process
        self.target = target
        self.gate_noise = plan.noise if plan.noisy else None
        self.n = circuit.n_qubits
        # Statevector simulators run fused single-qubit runs as u3; noise channels attach per named gate and
        # hardware compilers take their own gate sets, so those run the circuit's gates as they are.
        self.fused = not plan.target.density_matrix and not plan.target.hardware
        layout = fused_layout(circuit) if self.fused else [(g.name, g.wires, (i,)) for i, g in
                                                            enumerate(circuit.gates)]
        self.codes = [GATE_CODES[name] for name, _, _ in layout]
        self.q0 = [wires[0] for _, wires, _ in layout]
        self.q1 = [wires[1] if len(wires) > 1 else 0 for _, wires, _ in layout]
        self._u3 = [(position, gates) for position, (name, _, gates) in enumerate(layout) if name == "u3"]
        self.rotation_positions = np.array(circuit.rotation_gates, dtype=np.int64)
        self._operators: dict[tuple[str, ...], list] = {}
        name = f"workbench_circuit_{next(_serial)}"
        source = (_AMPLITUDE if circuit.amplitude_inputs else _PLAIN).format(name=name) + _BODY + \
            (_U3 if self.fused else "")

        def build(cudaq):
            noise = cudaq_noise_model(cudaq, self.gate_noise) if self.gate_noise else None
            return cudaq.kernel(source, kernelName=name), noise

        self.kernel, self._cudaq_noise = call(target, build)

    def __del__(self) -> None:
        # CUDA-Q objects are released on the CUDA-Q thread, like every other use of them.
        try:
            dispose(self.__dict__.pop("kernel", None), self.__dict__.pop("_cudaq_noise", None),
                    self.__dict__.pop("_operators", None))
        except Exception:  # interpreter shutdown
            pass

    # -- argument building ----------------------------------------------------------------------
    def _theta(self, angles: torch.Tensor) -> np.ndarray:
        """The kernel's angle argument per sample: one per gate, or (θ, φ, λ) blocks of the fused u3 gates."""
        if self.fused:
            return self._u3_theta(angles)[0]
        theta = np.zeros((angles.shape[0], len(self.codes)))
        if len(self.rotation_positions):
            theta[:, self.rotation_positions] = angles.detach().double().cpu().numpy()
        return theta

    def _u3_theta(self, angles: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """(kernel angles (batch, 3 * gates), the global phase (batch,) the u3 gates leave out)."""
        batch, count = angles.shape[0], len(self.codes)
        theta = np.zeros((batch, 3 * count))
        if not self._u3:
            return theta, torch.zeros(batch, dtype=torch.float64)
        program = self.sweep_program()
        with torch.no_grad():
            rot = program.rotation_matrices(angles.detach().to(torch.float64).to(program.device)) \
                if angles.shape[1] else None
            matrices = []
            for _, gates in self._u3:
                fused = None
                for g in gates:  # later gates act after earlier ones: multiply on the left
                    matrix = program.gate_matrix(g, rot)
                    fused = matrix if fused is None else matrix @ fused
                matrices.append(fused.expand(batch, 2, 2))
            params, phases = u3_angles(torch.stack(matrices, 1))  # (batch, groups, 3), (batch, groups)
        params = params.cpu().numpy()
        positions = np.array([position for position, _ in self._u3])
        for k in range(3):
            theta[:, k * count + positions] = params[:, :, k]
        return theta, phases.sum(1).cpu()

    def _args(self, angles: torch.Tensor, init: torch.Tensor | None) -> list[tuple]:
        theta = self._theta(angles)
        first = (init.detach().cpu().numpy().astype(np.complex128) if init is not None
                 else np.full(angles.shape[0], self.n))
        return [(first[b].tolist() if init is not None else int(first[b]), self.codes, self.q0, self.q1,
                 theta[b].tolist()) for b in range(angles.shape[0])]

    def _broadcast(self, angles: torch.Tensor, init: torch.Tensor | None) -> tuple:
        batch = angles.shape[0]
        first = (init.detach().cpu().numpy().astype(np.complex128) if init is not None
                 else np.full(batch, self.n, dtype=np.int64))
        tile = lambda row: np.tile(np.asarray(row, dtype=np.int64), (batch, 1))  # noqa: E731
        return first, tile(self.codes), tile(self.q0), tile(self.q1), self._theta(angles)

    def _call_kwargs(self, shots: int | None) -> dict:
        kwargs = {}
        if shots:
            kwargs["shots_count"] = int(shots)
        if self._cudaq_noise is not None:
            kwargs["noise_model"] = self._cudaq_noise
        return kwargs

    def _in_chunks(self, run: Callable, arrays: tuple, shots: int | None) -> list:
        """One broadcast call, or on shot-based hardware targets several of PROGRESS_CHUNK rows (never a single
        row: a one-row broadcast returns no list), each reported to engine.progress as it finishes."""
        batch = len(arrays[0])
        size = PROGRESS_CHUNK if self.target.is_hardware else batch
        starts = list(range(0, batch, size))
        if len(starts) > 1 and batch - starts[-1] == 1:
            starts.pop()
        results = []
        for start, stop in zip(starts, [*starts[1:], batch]):
            results += list(run(*(a[start:stop] for a in arrays)))
            progress.report(stop - start, shots)
        return results

    def _spread_over_qpus(self, cudaq, paulis: tuple, operators: list, rows: list, kwargs: dict,
                          shots: int | None) -> np.ndarray:
        """nvidia-mqpu: row b runs asynchronously on QPU b mod (number of GPUs). observe_async takes one
        operator, so each call measures the sum of the distinct terms and every term is read back from it."""
        unique = dict(zip(paulis, operators))
        total = None
        for operator in unique.values():
            total = operator if total is None else total + operator
        qpus = max(1, cudaq.get_target().num_qpus())
        futures = [cudaq.observe_async(self.kernel, total, *args, qpu_id=b % qpus, **kwargs)
                   for b, args in enumerate(rows)]
        results = [future.get() for future in futures]
        progress.report(len(rows), shots)
        return np.array([[result.expectation(unique[p]) for p in paulis] for result in results])

    # -- evaluation -----------------------------------------------------------------------------
    def readout(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        """Per-term expectations (batch, n_terms) or probabilities (batch, 2**k), float64, on the layer's device."""
        plan, shots = self.readout_plan, self.plan.shots
        self.plan.check_memory(angles.shape[0])
        if angles.shape[0] == 0:
            values = torch.zeros(0, len(plan.paulis) if plan.mode == "estimator" else plan.width, dtype=torch.float64)
        elif plan.mode == "sampler":
            values = self._probabilities(angles, init, plan, shots)
        else:
            values = self._expectations(angles, init, plan, shots)
        # On the layer's device whatever the path (host results, or states kept on the GPU), as the torch
        # engines return them: the layer and the gradient methods combine them with tensors on that device.
        return values.to(self.device)

    def _expectations(self, angles, init, plan: ReadoutPlan, shots) -> torch.Tensor:
        batch = angles.shape[0]
        active = [k for k, p in enumerate(plan.paulis) if set(p) != {"I"}]
        out = np.ones((batch, len(plan.paulis)))
        if active and self._cudaq_noise is not None:
            # Noisy observe of an X/Y term appends basis-change gates (h, ...) that pick up the gate noise
            # registered for those names, so it measures a different channel than the circuit's. Read the
            # terms from the final density matrix instead, and draw shots from the exact values.
            rho = self._final_states(angles, init).numpy()
            out[:, active] = np.stack([density_expectation(rho, plan.paulis[k]) for k in active], axis=1)
            values = torch.from_numpy(out)
            if shots:
                values = sample_shots(values, plan, int(shots))
                values[:, [k for k in range(len(plan.paulis)) if k not in active]] = 1.0
            return values
        if active:
            key = tuple(plan.paulis[k] for k in active)
            kwargs = self._call_kwargs(shots)

            def run(cudaq):
                if key not in self._operators:
                    self._operators[key] = [pauli_operator(cudaq, plan.paulis[k]) for k in active]
                operators = self._operators[key]
                if self.target.name in MQPU_TARGETS and self._cudaq_noise is None:
                    return self._spread_over_qpus(cudaq, key, operators, self._args(angles, init), kwargs, shots)
                try:
                    if batch == 1 or init is not None:
                        # Broadcasting a list[complex] argument in cudaq 0.16 silently runs every row from the
                        # first row's (or |0..0>) initial state: amplitude-encoded batches go row by row.
                        results = [cudaq.observe(self.kernel, operators, *args, **kwargs)
                                   for args in self._args(angles, init)]
                        progress.report(len(results), shots)
                    else:
                        results = self._in_chunks(lambda *a: cudaq.observe(self.kernel, operators, *a, **kwargs),
                                                  self._broadcast(angles, init), shots)
                    return np.array([[r.expectation() for r in row] for row in results])
                finally:
                    if self._cudaq_noise is not None:
                        _noise(cudaq, None)

            out[:, active] = call(self.target, run)
        self.executions += batch
        return torch.from_numpy(out)

    def _probabilities(self, angles, init, plan: ReadoutPlan, shots) -> torch.Tensor:
        batch, k = angles.shape[0], len(plan.marginal)
        if not shots:
            states = self._final_states(angles, init)
            if states.dim() == 3:  # density matrices
                probs = torch.diagonal(states, dim1=-2, dim2=-1).real
            else:
                probs = (states.conj() * states).real
            # The states are on the GPU when they were handed over there: the index must be on their device.
            index = marginal_index(self.n, plan.marginal, probs.device)
            return probs.new_zeros(batch, 2**k).index_add(1, index, probs)
        kwargs = self._call_kwargs(shots)

        def run(cudaq):
            try:
                if batch == 1 or init is not None:  # see _expectations: no broadcasting of initial states
                    results = [cudaq.sample(self.kernel, *args, **kwargs) for args in self._args(angles, init)]
                    progress.report(len(results), shots)
                else:
                    results = self._in_chunks(lambda *a: cudaq.sample(self.kernel, *a, **kwargs),
                                              self._broadcast(angles, init), shots)
                return [dict(result.items()) for result in results]
            finally:
                if self._cudaq_noise is not None:
                    _noise(cudaq, None)

        out = np.zeros((batch, 2**k))
        for b, counts in enumerate(call(self.target, run)):
            for bits, count in counts.items():
                # Sample bitstrings print qubit 0 leftmost.
                index = sum(int(bits[q]) << j for j, q in enumerate(plan.marginal))
                out[b, index] += count
        self.executions += batch
        return torch.from_numpy(out / shots)

    def states(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        """Final state vectors (batch, 2**n) complex128, also on a noiseless density-matrix target (for adjoint).

        From a density matrix a state is known up to a global phase only; the adjoint sweep removes it.
        """
        states = self._final_states(angles, init)
        if states.dim() == 2:
            if self.fused:  # the u3 gates left out each group's phase: put the circuit's global phase back
                states = states * torch.exp(1j * self._u3_theta(angles)[1]).unsqueeze(1).to(states.device)
            return states
        if self._cudaq_noise is not None:
            raise ValueError("a noisy density matrix has no state vector: use the density_matrix gradient")
        # A pure ρ = ψψ†: the column of its largest diagonal entry k is ψ·conj(ψ_k), ψ up to a global phase.
        k = torch.diagonal(states, dim1=-2, dim2=-1).real.argmax(dim=1)
        columns = states[torch.arange(states.shape[0]), :, k]
        scale = torch.sqrt(states[torch.arange(states.shape[0]), k, k].real).unsqueeze(1)
        return columns / scale

    def _final_states(self, angles: torch.Tensor, init: torch.Tensor | None) -> torch.Tensor:
        """Final states (batch, 2**n) complex128, or density matrices (batch, 2**n, 2**n) on density-matrix targets.

        On a statevector GPU target with the layer on a GPU the states stay in GPU memory (`cudaq_device`);
        elsewhere (tensor-network and multi-GPU targets too) they are copied to host memory. Every sample's
        state is requested with get_state_async before the first is read, so the simulator works through the
        batch while this thread converts the states already done.
        """
        on_device = self.states_on_device

        def run(cudaq):
            if self._cudaq_noise is not None:
                _noise(cudaq, self._cudaq_noise)
            try:
                futures = [cudaq.get_state_async(self.kernel, *args) for args in self._args(angles, init)]
                if on_device:  # GPU memory to the layer's device; the states are released here, on this thread
                    return stack_states([future.get() for future in futures], self.n, self.device)
                return torch.from_numpy(np.stack([np.array(future.get(), dtype=np.complex128) for future in futures]))
            finally:
                if self._cudaq_noise is not None:
                    _noise(cudaq, None)

        states = call(self.target, run)
        self.executions += len(states)
        progress.report(len(states), None)
        return states

    @property
    def states_on_device(self) -> bool:
        """Final states reach torch in GPU memory (a target whose state is one vector on a GPU and a layer on a
        GPU), else through host memory."""
        return hands_off_on_device(self.plan.target.state_on_gpu, self.device)

    def draw(self, angles: torch.Tensor, init: torch.Tensor | None = None) -> str:
        args = self._args(angles[:1], init[:1] if init is not None else None)[0]
        return call(self.target, lambda cudaq: cudaq.draw(self.kernel, *args))

    def describe(self) -> str:
        return f"CUDA-Q {self.target.name} ({len(self.codes)} gates, one interpreter kernel)"
