"""Bulk device provisioning, as the billing system does it after a migration.

In one run, on one private broker and database:
- baseline: the broker's own work — ``createRole`` + ``createClient`` in one
  message straight to Mosquitto's dynamic-security plugin, one device at a time;
- moydom: ``POST /api/v1/admin/contracts/{n}/devices`` over real HTTP, which
  does the same broker work plus the database row and the response.
Prints both rates (devices/s), median latencies and the ratio.

    .venv/bin/python -m bench.provision [--devices 300] [--database-url URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import uvicorn

from devices.topics import DeviceTopics
from gateway.api.app import create_app
from gateway.broker.acls import device_acls, device_role
from gateway.broker.dynsec import create_client_cmd, create_role_cmd
from gateway.runtime import start_context
from gateway.settings import Settings
from tests.support import free_port


def _summary(name: str, latencies: list[float], wall: float) -> float:
    rate = len(latencies) / wall
    p50 = statistics.median(latencies) * 1000
    p95 = statistics.quantiles(latencies, n=20)[18] * 1000
    print(f"{name:<10} {rate:8.1f} devices/s   p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=300)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        settings = Settings(
            var_dir=Path(tmp),
            database_url=args.database_url,
            mqtt_url=f"mqtt://127.0.0.1:{free_port()}",
            http_port=free_port(),
        )
        ctx = start_context(settings, stack)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(ctx), host="127.0.0.1", port=settings.http_port, log_level="warning"
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        stack.callback(thread.join)
        stack.callback(setattr, server, "should_exit", True)

        dynsec = ctx.provisioner.dynsec
        latencies: list[float] = []
        start = time.perf_counter()
        for n in range(args.devices):
            t0 = time.perf_counter()
            username = f"bench-{n}"
            topics = DeviceTopics("moydom", "benchhome", username)
            role = device_role(username)
            dynsec.batch(
                [
                    create_role_cmd(role, device_acls(topics)),
                    create_client_cmd(username, "bench-password-123", [role], username),
                ]
            )
            latencies.append(time.perf_counter() - t0)
        raw = _summary("dynsec", latencies, time.perf_counter() - start)

        base = f"http://127.0.0.1:{settings.http_port}/api/v1"
        admin = {"Authorization": f"Bearer {ctx.secrets.admin_token}"}
        with httpx.Client(base_url=base, headers=admin) as http:
            http.post(
                "/admin/contracts", json={"number": "1", "password": "bench-pass", "address": "a"}
            )
            latencies = []
            start = time.perf_counter()
            for n in range(args.devices):
                t0 = time.perf_counter()
                r = http.post(
                    "/admin/contracts/1/devices", json={"kind": "motion", "name": f"m{n}"}
                )
                r.raise_for_status()
                latencies.append(time.perf_counter() - t0)
            ours = _summary("moydom", latencies, time.perf_counter() - start)
        backend = "sqlite" if ctx.db.is_sqlite else "postgresql"
        print(f"ratio moydom/dynsec: {ours / raw:.2f} ({backend}, {args.devices} devices)")


if __name__ == "__main__":
    main()
