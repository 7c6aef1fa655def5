"""The gateway's own secrets: from settings, or generated once and kept in ``var_dir``.

In development a missing admin token, signing key or broker password is
generated on first start and written to ``var_dir/secrets.json`` (mode 0600),
so restarts keep issued tokens and broker accounts valid. Production refuses to
start without the admin token and signing key, and, with an external broker,
without its passwords (see ``Settings``); the embedded broker's passwords are
generated here in production too, since nothing outside moydom uses them.
So is the VAPID key pair of Web Push (RFC 8292): browsers subscribe with its
public half, so it must outlive restarts — a new key would silently orphan
every subscription.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from gateway.settings import Settings

_NAMES = ("admin_token", "secret_key", "mqtt_password", "mqtt_admin_password")
"""Secrets a setting may give; generated when it does not."""
_VAPID = "vapid_private_key"


@dataclass(frozen=True)
class GatewaySecrets:
    admin_token: str
    secret_key: str
    mqtt_password: str
    mqtt_admin_password: str
    vapid_private_key: str = ""
    """Web Push: the P-256 private scalar, base64url (``py_vapid.Vapid02.from_raw``)."""


def _new_vapid_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _load(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {k: str(v) for k, v in data.items() if k in (*_NAMES, _VAPID)}


def resolve_secrets(settings: Settings) -> GatewaySecrets:
    """Return the secrets, generating and persisting the missing ones."""
    path = settings.var_dir / "secrets.json"
    stored = _load(path)
    values: dict[str, str] = {}
    changed = False
    for name in _NAMES:
        configured = getattr(settings, name)
        if configured is not None:
            values[name] = configured.get_secret_value()
        elif name in stored:
            values[name] = stored[name]
        else:
            values[name] = stored[name] = secrets.token_urlsafe(24)
            changed = True
    if _VAPID not in stored:
        stored[_VAPID] = _new_vapid_key()
        changed = True
    values[_VAPID] = stored[_VAPID]
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
        os.replace(tmp, path)
    return GatewaySecrets(**values)
