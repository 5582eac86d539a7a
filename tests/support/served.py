"""``edigw serve`` run in a thread of the test, for tests that watch a whole gateway."""

from __future__ import annotations

import threading

from edigw.config import GatewayConfig
from edigw.pipeline.runtime import Gateway
from edigw.pipeline.service import RunOutcome, serve


class Served:
    """``serve`` in a thread until the block ends (then stopped, as SIGTERM would);
    ``gateway`` once started, ``outcome`` once returned."""

    def __init__(self, config: GatewayConfig, *, processes: int | None = None) -> None:
        self.stop = threading.Event()
        self.started = threading.Event()
        self.gateway: Gateway | None = None
        self.outcome: RunOutcome | None = None
        self.processes = processes
        self.thread = threading.Thread(target=self._run, args=(config,), name="serve")

    def _run(self, config: GatewayConfig) -> None:
        self.outcome = serve(
            config,
            senders=2,
            stop=self.stop,
            on_start=self._on_start,
            processes=self.processes,
        )

    def _on_start(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.started.set()

    def __enter__(self) -> Served:
        self.thread.start()
        assert self.started.wait(30), "serve did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
