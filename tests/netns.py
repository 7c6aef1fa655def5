"""A network namespace of the test's own, and threads that run inside it.

Chromium gathers no ICE candidates on loopback, and tests may send traffic only to loopback or to
namespaces they create. So a browser test makes a namespace with its own loopback and a veth pair
holding a private address: Chromium gathers that address, and packets to it never leave the
namespace (an address of one's own is delivered over loopback).

A holder process (``unshare --net sleep``) keeps the namespace alive. :meth:`NetNamespace.run`
calls a function in a thread that first enters the namespace with ``setns(2)`` (root only):
every socket that thread opens, every thread it starts and every process it spawns live in the
namespace, while the rest of the test process (the broker, the database) stays outside.

Also here, because the browser test starts it inside the namespace: :func:`serve`, the gateway's
HTTP server on a real port, in a thread (the API fixtures' TestClient has no port).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import uvicorn

from gateway.api.app import create_app
from gateway.context import AppContext

T = TypeVar("T")
CLONE_NEWNET = 0x40000000


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or ``None`` if they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = subprocess.run(
        ["unshare", "--net", "--", "ip", "link", "add", "p0", "type", "veth", "peer", "name", "p1"],
        capture_output=True,
        text=True,
    )
    return (
        f"cannot make a namespace with a veth pair: {probe.stderr.strip()}"
        if probe.returncode
        else None
    )


class NetNamespace:
    """A namespace with loopback up and ``address`` on a veth pair; gone at exit."""

    def __init__(self, address: str = "10.203.0.1", prefix: int = 24) -> None:
        self.address, self._prefix = address, prefix
        self._holder: subprocess.Popen[bytes] | None = None

    @property
    def path(self) -> Path:
        assert self._holder is not None, "not entered"
        return Path(f"/proc/{self._holder.pid}/ns/net")

    def __enter__(self) -> NetNamespace:
        self._holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"])
        deadline = time.monotonic() + 5
        # The holder has its own namespace once its ns link differs from ours.
        while os.readlink(self.path) == os.readlink("/proc/self/ns/net"):
            if time.monotonic() > deadline:
                raise RuntimeError("unshare did not make a namespace")
            time.sleep(0.01)
        self.ip("link", "set", "lo", "up")
        self.ip("link", "add", "mdv0", "type", "veth", "peer", "name", "mdv1")
        self.ip("addr", "add", f"{self.address}/{self._prefix}", "dev", "mdv0")
        self.ip("link", "set", "mdv0", "up")
        self.ip("link", "set", "mdv1", "up")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._holder is not None:
            self._holder.kill()
            self._holder.wait()

    def ip(self, *args: str) -> None:
        subprocess.run(["nsenter", f"--net={self.path}", "ip", *args], check=True)

    def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a thread inside the namespace; its result, or its exception, here."""
        outcome: dict[str, Any] = {}

        def inside() -> None:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(self.path) as ns:
                if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
                    outcome["error"] = OSError(ctypes.get_errno(), "setns failed")
                    return
            try:
                outcome["result"] = fn()
            except BaseException as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=inside, name="in-netns")
        thread.start()
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        result: T = outcome["result"]
        return result


@contextmanager
def serve(ctx: AppContext, host: str, port: int) -> Iterator[str]:
    """The gateway's API on ``host:port`` in a thread, until the block ends; yields its URL.

    Live sessions are closed on the server's own loop before it stops."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(ctx), host=host, port=port, log_level="warning", lifespan="off")
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=loop.run_until_complete, args=(server.serve(),), name="uvicorn", daemon=True
    )
    thread.start()
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        if ctx.live is not None:
            asyncio.run_coroutine_threadsafe(ctx.live.close_all(), loop).result(10)
        server.should_exit = True
        thread.join(10)
        loop.close()
