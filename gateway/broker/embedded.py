"""The embedded broker: moydom starts Mosquitto with its generated config and
restarts it if it dies, so a one-box install needs no broker set-up.

The broker must not outlive moydom: a Mosquitto orphaned by a SIGKILLed
gateway would hold the port, and the next start would refuse. Two guards: it
is started under ``setpriv --pdeathsig TERM`` from the supervisor thread (the
parent-death signal fires when the forking *thread* ends, and that thread
lives exactly as long as the broker should), and its pid is written to a
pidfile the next start checks, reaping the process if it is still our
Mosquitto on our config (setpriv missing, or a kill between fork and exec).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

from gateway.broker.config import BrokerConfig, write
from gateway.broker.tls import ensure_self_signed

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


def _cmdline(pid: int) -> list[str]:
    """The arguments of a live process; empty for a zombie or a gone one."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")[:-1]


def _runs_config(pid: int, conf_path: Path) -> bool:
    args = _cmdline(pid)
    return any(a == "-c" and b == str(conf_path) for a, b in pairwise(args))


def reap_orphan(pidfile: Path, conf_path: Path, timeout: float = 10.0) -> int | None:
    """Stop the broker an earlier, killed moydom left running on ``conf_path``.

    Only a process whose command line is ``… -c <conf_path>`` is ours; a pid
    reused by anything else is left alone. Returns the pid reaped, if any.
    """
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if not _runs_config(pid, conf_path):
        pidfile.unlink(missing_ok=True)
        return None
    log.warning("stopping mosquitto (pid %d) left running by an earlier moydom", pid)
    deadline = time.monotonic() + timeout
    sig = signal.SIGTERM  # let it save its persistence file
    while _runs_config(pid, conf_path):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            sig = signal.SIGKILL
        time.sleep(0.05)
    pidfile.unlink(missing_ok=True)
    return pid


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

    def _ensure_certificate(self) -> None:
        """A TLS listener without a certificate of its own gets a self-signed one."""
        cfg = self.cfg
        if not (cfg.tls or cfg.tls_port) or cfg.certfile is None or cfg.keyfile is None:
            return
        if ensure_self_signed(cfg.certfile, cfg.keyfile, [cfg.host]):
            log.warning("made a self-signed broker certificate: %s", cfg.certfile)

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

    @property
    def pidfile(self) -> Path:
        return self.cfg.state_dir / "mosquitto.pid"

    def _spawn(self) -> subprocess.Popen[bytes]:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            log.warning("setpriv not found: mosquitto may outlive a killed moydom (util-linux)")
        guard = [setpriv, "--pdeathsig", "TERM"] if setpriv else []
        try:
            proc = subprocess.Popen(
                [*guard, self._binary, "-c", str(self.cfg.conf_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches moydom, which stops us in order
            )
        except FileNotFoundError as exc:
            raise BrokerError(f"{self._binary} not found; install mosquitto") from exc
        self.pidfile.write_text(f"{proc.pid}\n")  # setpriv execs: the same pid
        return proc

    def _launch(self, timeout: float) -> None:
        reap_orphan(self.pidfile, self.cfg.conf_path)
        ensure_port_free(self.cfg.host, self.cfg.port)
        if self.cfg.tls_port is not None:
            ensure_port_free(self.cfg.host, self.cfg.tls_port)
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
        self._ensure_certificate()
        write(self.cfg)
        self._init_dynsec()
        started = threading.Event()
        failure: list[BrokerError] = []

        def first_launch() -> bool:
            try:
                self._launch(timeout)
                return True
            except BrokerError as exc:
                failure.append(exc)
                return False
            finally:
                started.set()

        # Every spawn happens on the supervisor thread (see the module docstring).
        self._supervisor = threading.Thread(
            target=self._supervise, args=(first_launch,), name="broker", daemon=True
        )
        self._supervisor.start()
        started.wait()
        if failure:
            self._supervisor.join()
            raise failure[0]
        threading.Thread(target=self._save_periodically, name="broker-save", daemon=True).start()
        log.info("mosquitto listening on %s:%d", self.cfg.host, self.cfg.port)

    def _save_periodically(self) -> None:
        """Make the broker save its state every ``autosave_interval_s``.

        Mosquitto's own ``autosave_interval`` counts whole seconds and saves
        one second late (``1`` saves every 2 s, as measured); SIGUSR1 makes it
        save at once. Only a process whose port accepted is signalled: its
        handler is installed by then (an earlier SIGUSR1 would kill it)."""
        while not self._stopping.wait(self.cfg.autosave_interval_s):
            with self._lock:
                proc = self._proc
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGUSR1)

    def _supervise(self, first_launch: Callable[[], bool]) -> None:
        if not first_launch():
            return
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
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._supervisor is not None:
            self._supervisor.join(timeout)
        self.pidfile.unlink(missing_ok=True)
