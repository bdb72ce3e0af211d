"""Executors: one per kind of target (torch statevector, torch density matrix, CUDA-Q), all implementing
`base.Executor`. CUDA-Q is imported only by `cudaq` and `cudaq_runtime`, on first use of a CUDA-Q target."""
