"""Short-lived signed media URLs.

A ``<video src>`` cannot send an ``Authorization`` header, so the cabinet
asks (with its bearer token) for a URL signed for one resource: the path and
its query, the contract, and an expiry, under an HMAC with the gateway's
secret key. The URL works for that resource only, for that contract only,
until it expires; it is never a guessable path.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

from starlette.requests import Request

SIGNED_TTL_S = 600


def _mac(key: str, path: str, params: dict[str, str], contract_id: int, exp: int) -> str:
    canonical = "\n".join(
        [path, urlencode(sorted(params.items())), str(contract_id), str(exp)]
    ).encode()
    return hmac.new(key.encode(), canonical, hashlib.sha256).hexdigest()[:40]


def sign(
    key: str, path: str, params: dict[str, str], contract_id: int, now: float | None = None
) -> str:
    """``path?…&cid=…&exp=…&sig=…``, valid for ``SIGNED_TTL_S``."""
    exp = int((now or time.time()) + SIGNED_TTL_S)
    sig = _mac(key, path, params, contract_id, exp)
    query = urlencode({**params, "cid": contract_id, "exp": exp, "sig": sig})
    return f"{path}?{query}"


def verify(key: str, request: Request) -> int | None:
    """The contract id a valid, unexpired signature on this request names."""
    q = dict(request.query_params)
    sig, exp, cid = q.pop("sig", None), q.pop("exp", None), q.pop("cid", None)
    if not (sig and exp and cid and exp.isdigit() and cid.isdigit()):
        return None
    if int(exp) < time.time():
        return None
    expected = _mac(key, request.url.path, q, int(cid), int(exp))
    return int(cid) if hmac.compare_digest(sig, expected) else None
