"""Circuit-batch progress: the engine reports each batch of circuits it ran; a job's worker listens.

The hook is one call, `report(circuits, shots)`, made by the CUDA-Q executor after every batched call
(forward values, each gradient batch). It costs nothing when nobody listens. Listeners are per process
(a job's worker process runs one training), set with `listening(callback)`.

Example:
    with listening(lambda circuits, shots: print(circuits, shots)):
        model(x)
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator

Listener = Callable[[int, int], None]

_listeners: list[Listener] = []
_lock = threading.Lock()


def report(circuits: int, shots: int | None) -> None:
    """`circuits` circuits just ran, with `shots` shots each (None or 0: exact expectations)."""
    if not _listeners:
        return
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        listener(int(circuits), int(circuits) * int(shots or 0))


@contextlib.contextmanager
def listening(listener: Listener) -> Iterator[None]:
    with _lock:
        _listeners.append(listener)
    try:
        yield
    finally:
        with _lock:
            _listeners.remove(listener)
