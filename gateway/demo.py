"""``moydom demo``: the gateway on its embedded defaults with a simulated home.

It opens onto the pages: the banner's first lines are the «Мой дом» cabinet's
address with the demo contract's number and password, and the dispatch
console's with the demo dispatcher's login and password.

The demo home is provisioned through the same ``Provisioner`` the admin API
uses, and its simulated devices connect with the credentials that returned —
so the demo exercises the real broker accounts and ACLs. Device passwords are
shown only once by the broker, so the demo keeps them in ``var/demo-devices.json``
to reconnect the same devices on the next run.

The demo's intercom panel has a visitor: 15 s after the start and then every
minute — or at once when the demo process gets ``SIGUSR1`` — it dials the
demo flat, whose members' streams ring; the caller answers, opens the door
(``POST /api/v1/calls/{id}/open``, acknowledged by the simulated panel) and
hangs up through the API, as the banner says.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select

from devices.kinds import DeviceKind
from devices.simulator import SimSpec, SimulatedDevice, Visitor
from gateway.broker.tls import client_tls
from gateway.context import AppContext
from gateway.db.models import utcnow
from gateway.db.security_models import AlarmPanel, AlarmUser, Dispatcher
from gateway.errors import NotFound
from gateway.passwords import hash_password
from gateway.runtime import run_roles, serve_api, start_recorder
from gateway.security.panel import initial_state
from gateway.settings import Settings

log = logging.getLogger(__name__)

DEMO_CONTRACT = "100200300"
DEMO_PASSWORD = "demo-password"  # noqa: S105 - the documented demo login
DEMO_ADDRESS = "Новосибирск, ул. Ленина, д. 1, кв. 12"
DEMO_DEVICES: tuple[tuple[DeviceKind, str], ...] = (
    (DeviceKind.MOTION, "Прихожая"),
    (DeviceKind.LEAK, "Ванная"),
    (DeviceKind.CONTACT, "Входная дверь"),
    (DeviceKind.KEYPAD, "Клавиатура"),
    (DeviceKind.SIREN, "Сирена"),
    (DeviceKind.GATE, "Ворота во двор"),
    (DeviceKind.INTERCOM, "Домофон подъезда"),
    (DeviceKind.CAMERA, "Камера в прихожей"),
)
"""The simulated home's devices, named as a subscriber would name them."""
CAMERA_PORT_ENV = "MOYDOM_DEMO_RTSP_PORT"
DEMO_CODE, DEMO_DURESS = "1234", "9999"
DEMO_DISPATCHER, DEMO_DISPATCHER_PASSWORD = "dispatcher", "demo-dispatcher"
DEMO_TIMING = {"armed_away": {"exit_delay_s": 10, "entry_delay_s": 15, "trigger_time_s": 60}}
DEMO_VISITOR = Visitor(flat="12", first_s=15.0, every_s=60.0, waits_s=45.0)
"""Who rings the demo intercom (the flat is that of ``DEMO_ADDRESS``)."""


def _camera_url() -> str:
    port = int(os.environ.get(CAMERA_PORT_ENV, "8554"))
    return f"rtsp://127.0.0.1:{port}/demo"


def provision_demo_home(ctx: AppContext) -> list[SimSpec]:
    """Create the demo contract and devices, or reuse those of an earlier run."""
    prov = ctx.provisioner
    try:
        contract = prov.get_contract(DEMO_CONTRACT)
    except NotFound:
        contract = prov.create_contract(DEMO_CONTRACT, DEMO_PASSWORD, DEMO_ADDRESS)
    if not contract.active:
        prov.set_suspended(DEMO_CONTRACT, suspended=False)
    store = ctx.settings.var_dir / "demo-devices.json"
    passwords: dict[str, str] = json.loads(store.read_text()) if store.exists() else {}
    existing = {
        device.name: (device, topics) for device, topics in prov.list_devices(DEMO_CONTRACT)
    }
    specs: list[SimSpec] = []
    for name in existing.keys() - {name for _, name in DEMO_DEVICES}:
        prov.delete_device(DEMO_CONTRACT, existing[name][0].uid)  # an older demo's device
    for kind, name in DEMO_DEVICES:
        found = existing.get(name)
        if found is not None and found[0].uid in passwords and found[0].kind == kind:
            device, topics = found
            password = passwords[device.uid]
        else:
            if found is not None:
                prov.delete_device(DEMO_CONTRACT, found[0].uid)
            rtsp = _camera_url() if kind is DeviceKind.CAMERA else None
            creds = prov.create_device(DEMO_CONTRACT, kind, name, rtsp_url=rtsp)
            device, topics, password = creds.device, creds.topics, creds.password
            passwords[device.uid] = password
        specs.append(SimSpec(kind, name, device.mqtt_username, password, topics))
    fd = os.open(store, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(passwords, fh, indent=2)
    return specs


def secure_demo_home(ctx: AppContext) -> None:
    """The security service for the demo home (short delays), a keypad user
    and a dispatcher, unless an earlier run made them."""
    with ctx.db.transaction() as session:
        home = ctx.provisioner.get_contract(DEMO_CONTRACT, session).homes[0]
        if session.get(AlarmPanel, home.id) is None:
            session.add(
                AlarmPanel(
                    home_id=home.id,
                    contract_id=home.contract_id,
                    account="1001",
                    monitored=True,
                    settings={"timing": DEMO_TIMING},
                    state=initial_state(),
                    status="disarmed",
                    updated_at=utcnow(),
                )
            )
            session.flush()
            session.add(
                AlarmUser(
                    home_id=home.id,
                    name="Семья",
                    code_hash=hash_password(DEMO_CODE),
                    duress_hash=hash_password(DEMO_DURESS),
                )
            )
        if session.scalar(select(Dispatcher.id).where(Dispatcher.login == DEMO_DISPATCHER)) is None:
            session.add(
                Dispatcher(
                    login=DEMO_DISPATCHER,
                    name="Дежурный (демо)",
                    password_hash=hash_password(DEMO_DISPATCHER_PASSWORD),
                )
            )


def rtsp_describe(url: str, timeout: float = 10.0) -> str:
    """The status line a camera answers an RTSP DESCRIBE of ``url`` with;
    ``OSError`` if it does not answer.

    A GStreamer RTSP server listens as soon as it starts but builds a mount's
    pipeline only when a client asks: a missing plugin shows as a 5XX to every
    client, never at start-up. DESCRIBE is the first thing a reader sends.
    """
    parts = urlsplit(url)
    request = f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port or 554), timeout=timeout) as sock:
        sock.sendall(request.encode())
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed without an answer")
            reply += chunk
    return reply.split(b"\r\n", 1)[0].decode(errors="replace").strip()


def camera_problem(url: str) -> str | None:
    """``None`` if the camera answers DESCRIBE with 200, else what is wrong, in words."""
    try:
        status = rtsp_describe(url)
    except OSError as exc:
        return f"no answer to RTSP DESCRIBE ({exc})"
    if status.split(" ", 2)[1:2] == ["200"]:
        return None
    return (
        f"it answers RTSP DESCRIBE with {status!r}: its GStreamer pipeline "
        "(devices/testcamera.py) does not start. A missing plugin? "
        "`make system-deps` installs them"
    )


def _start_camera(stack: ExitStack) -> tuple[str, str | None]:
    """Start the GStreamer test camera under Debian's python3; its URL, and
    ``None`` if it answers, else why it does not."""
    url = _camera_url()
    system_python = shutil.which("python3", path="/usr/bin")
    if system_python is None:
        return url, "no /usr/bin/python3 to run the GStreamer RTSP server"
    port = url.rsplit(":", 1)[1].split("/")[0]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [system_python, "-m", "devices.testcamera", "--port", port],
        cwd=root,
        stdout=subprocess.PIPE,  # its first line: the URL, once it listens
        text=True,  # its stderr is the demo's: GStreamer's own errors show there
        start_new_session=True,
    )
    out = proc.stdout
    assert out is not None
    line = out.readline().strip()
    if not line.startswith("rtsp://"):
        out.close()
        return url, f"it did not start (exit code {proc.wait(5)}; its error is above)"

    def _stop() -> None:
        proc.terminate()
        proc.wait(5)
        out.close()

    stack.callback(_stop)
    return line, camera_problem(line)


def camera_banner(url: str, problem: str | None) -> str:
    """The banner's camera line: the bare URL only when the camera answered."""
    return url if problem is None else f"NOT WORKING: {url}: {problem}"


def page_base(settings: Settings) -> str:
    """Where a browser on this machine reaches the pages (a wildcard bind is not an address)."""
    host = settings.http_host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - recognising the wildcard, not binding it
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.http_port}"


def run_demo(settings: Settings) -> None:
    with ExitStack() as stack:
        ctx = run_roles(settings, {"api", "ingest", "alarms"}, stack)
        assert ctx is not None
        specs = provision_demo_home(ctx)
        secure_demo_home(ctx)
        camera, problem = _start_camera(stack)
        if problem is not None:
            log.error("the demo's test camera does not work: %s", problem)
        # After the camera is provisioned and serving: recording starts at once.
        start_recorder(settings, ctx.secrets, ctx.db, stack)
        sims = []
        for spec in specs:
            visitor = DEMO_VISITOR if spec.kind is DeviceKind.INTERCOM else None
            sim = SimulatedDevice(
                spec,
                settings.mqtt_host,
                settings.mqtt_port,
                tls=client_tls(settings),
                visitor=visitor,
            )
            sim.start()
            stack.callback(sim.stop)
            sims.append(sim)
        panel = next(sim for sim in sims if sim.spec.kind is DeviceKind.INTERCOM)
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: panel.visit_now())
        base = page_base(settings)
        gate = next(s.topics for s in specs if s.kind is DeviceKind.GATE)
        v = DEMO_VISITOR
        banner = [
            "",
            "moydom demo",
            f"  cabinet       {base}/app/   «Мой дом»: log in with contract {DEMO_CONTRACT},"
            f" password {DEMO_PASSWORD}",
            f"  dispatch      {base}/dispatch/   log in as {DEMO_DISPATCHER},"
            f" password {DEMO_DISPATCHER_PASSWORD}",
            f"  alarm codes   {DEMO_CODE} (duress {DEMO_DURESS}); exit delay 10 s, entry 15 s",
            f"  API           {base}/api/v1   (OpenAPI: {base}/docs)",
            f"  admin token   {ctx.secrets.admin_token}",
            f"  operator      {base}/operator/   log in with the admin token",
            f"  broker        {settings.mqtt_url} ({len(specs)} simulated devices)",
            f"  test camera   {camera_banner(camera, problem)}",
            f"  live view     {base}/live   (log in as the subscriber; WebRTC, see docs/live.md)",
            f"  open the gate POST {base}/api/v1/homes/{gate.home}/devices/{gate.device}/commands"
            ' {"action": "open"}',
            f"  intercom      a visitor dials flat {v.flat} {v.first_s:.0f} s after the start, then"
            f" every {v.every_s:.0f} s (now: kill -USR1 {os.getpid()}); it rings on"
            f" {base}/api/v1/stream",
            f"                and at GET {base}/api/v1/calls?state=ringing; then POST"
            f" {base}/api/v1/calls/{{id}}/answer,",
            f"                POST {base}/api/v1/calls/{{id}}/open (opens the door),"
            f" POST {base}/api/v1/calls/{{id}}/hangup",
            "  Ctrl-C stops everything.",
            "",
        ]
        print("\n".join(banner), file=sys.stderr, flush=True)
        serve_api(ctx)
