"""The gateway's own secrets: from settings, or generated once and kept in ``var_dir``.

In development a missing admin token, signing key or broker password is
generated on first start and written to ``var_dir/secrets.json`` (mode 0600),
so restarts keep issued tokens and broker accounts valid. Production refuses to
start without the admin token and signing key, and, with an external broker,
without its passwords (see ``Settings``); the embedded broker's passwords are
generated here in production too, since nothing outside moydom uses them.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from gateway.settings import Settings

_NAMES = ("admin_token", "secret_key", "mqtt_password", "mqtt_admin_password")


@dataclass(frozen=True)
class GatewaySecrets:
    admin_token: str
    secret_key: str
    mqtt_password: str
    mqtt_admin_password: str


def _load(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {k: str(v) for k, v in data.items() if k in _NAMES}


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
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(stored, fh, indent=2)
        os.replace(tmp, path)
    return GatewaySecrets(**values)
