"""The embedded broker: moydom starts Mosquitto with its generated config and
restarts it if it dies, so a one-box install needs no broker set-up."""

from __future__ import annotations

import logging
import socket
import subprocess
import threading
import time

from gateway.broker.config import BrokerConfig, write

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The broker could not be prepared, started or reached."""


def wait_for_port(host: str, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise BrokerError(f"broker at {host}:{port} not reachable: {exc}") from exc
            time.sleep(0.02)


def ensure_port_free(host: str, port: int) -> None:
    """Refuse to start when something else listens there.

    On a Debian machine with systemd, installing the ``mosquitto`` package
    starts the system broker on 127.0.0.1:1883 — our default. Without this
    check our child would exit, while a port probe would happily succeed
    against the other broker.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise BrokerError(
                f"{host}:{port} is already in use ({exc.strerror}); if it is the system "
                "Mosquitto, stop it (systemctl disable --now mosquitto) or point "
                "MOYDOM_MQTT_URL at a free port"
            ) from exc


class EmbeddedBroker:
    """A supervised Mosquitto child process.

    ``start`` writes the config, initialises the dynamic-security file on first
    run (with the gateway's admin account) and waits until the port accepts
    connections. A supervisor thread restarts the broker with backoff if it
    exits on its own; ``stop`` terminates it for good.
    """

    def __init__(
        self, cfg: BrokerConfig, admin_username: str, admin_password: str, binary: str
    ) -> None:
        self.cfg = cfg
        self._admin = (admin_username, admin_password)
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self.restarts = 0

    def _init_dynsec(self) -> None:
        if self.cfg.dynsec_path.exists():
            return
        user, password = self._admin
        result = subprocess.run(
            ["mosquitto_ctrl", "dynsec", "init", str(self.cfg.dynsec_path), user, password],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(f"mosquitto_ctrl dynsec init failed: {result.stderr.strip()}")
        self.cfg.dynsec_path.chmod(0o600)

    def _spawn(self) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                [self._binary, "-c", str(self.cfg.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches moydom, which stops us in order
            )
        except FileNotFoundError as exc:
            raise BrokerError(f"{self._binary} not found; install mosquitto") from exc

    def _launch(self, timeout: float) -> None:
        ensure_port_free(self.cfg.host, self.cfg.port)
        proc = self._spawn()
        try:
            wait_for_port(self.cfg.host, self.cfg.port, timeout)
        except BrokerError:
            proc.kill()
            _, err = proc.communicate()
            raise BrokerError(
                f"mosquitto did not start: {err.decode(errors='replace').strip()} "
                f"(log: {self.cfg.log_path})"
            ) from None
        if proc.poll() is not None:
            # Another process owns the port; ours exited.
            _, err = proc.communicate()
            raise BrokerError(f"mosquitto exited: {err.decode(errors='replace').strip()}")
        self._proc = proc

    def start(self, timeout: float = 10.0) -> None:
        write(self.cfg)
        self._init_dynsec()
        self._launch(timeout)
        self._supervisor = threading.Thread(target=self._supervise, name="broker", daemon=True)
        self._supervisor.start()
        log.info("mosquitto listening on %s:%d", self.cfg.host, self.cfg.port)

    def _supervise(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            with self._lock:
                proc = self._proc
            if proc is None:
                return
            code = proc.wait()
            if self._stopping.is_set():
                return
            log.error("mosquitto exited with %s; restarting in %.1fs", code, backoff)
            if self._stopping.wait(backoff):
                return
            with self._lock:
                try:
                    self._launch(timeout=10.0)
                    self.restarts += 1
                    backoff = 0.2
                except BrokerError:
                    log.exception("mosquitto restart failed")
                    backoff = min(backoff * 2, 10.0)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
