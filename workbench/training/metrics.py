"""The metric stream: every event a training run emits, kept in order, delivered without blocking.

The training loop calls `emit`, which only appends under a lock and puts the event on each
subscriber's queue. Each subscriber is served by its own daemon thread, so a slow chart never slows
training. Pollers (GUI periodic callbacks) read `since(cursor)` instead of subscribing.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

Event = dict[str, Any]


class Subscription:
    def __init__(self, stream: "MetricStream", callback: Callable[[Event], None]):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._callback = callback
        self._stream = stream
        self.delivered = 0
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._serve, name="metric-subscriber", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            try:
                self._callback(event)
            except Exception as err:  # a broken chart must not take the stream down
                self.errors.append(err)
            self.delivered += 1

    def put(self, event: Event) -> None:
        self._queue.put(event)

    def close(self, wait: bool = False) -> None:
        self._stream._unsubscribe(self)
        self._queue.put(None)
        if wait:
            self._thread.join()

    def join(self, timeout: float | None = None) -> None:
        """Wait until every event queued so far has been delivered (closes the subscription)."""
        self._stream._unsubscribe(self)
        self._queue.put(None)
        self._thread.join(timeout)


class MetricStream:
    def __init__(self) -> None:
        self._events: list[Event] = []
        self._lock = threading.Lock()
        self._subscribers: list[Subscription] = []
        self.changed = threading.Condition(self._lock)

    def emit(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)
            subscribers = list(self._subscribers)
            self.changed.notify_all()
        for subscriber in subscribers:
            subscriber.put(event)

    def subscribe(self, callback: Callable[[Event], None], replay: bool = True) -> Subscription:
        """Call `callback(event)` for every event (first the ones already kept, if replay) on a separate thread."""
        with self._lock:
            subscription = Subscription(self, callback)
            if replay:
                for event in self._events:
                    subscription.put(event)
            self._subscribers.append(subscription)
        return subscription

    def _unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscribers:
                self._subscribers.remove(subscription)

    def since(self, cursor: int) -> tuple[list[Event], int]:
        """Events after position `cursor`, and the new cursor: for pollers."""
        with self._lock:
            return self._events[cursor:], len(self._events)

    def events(self, kind: str | None = None) -> list[Event]:
        with self._lock:
            return [e for e in self._events if kind is None or e.get("kind") == kind]

    def wait_for(self, predicate: Callable[[list[Event]], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self._events), timeout)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)
