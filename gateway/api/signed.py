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
import re
import time
from urllib.parse import urlencode

from starlette.requests import Request

SIGNED_TTL_S = 600
_NUMBER = re.compile(r"[0-9]{1,15}")
"""ASCII digits only: ``str.isdigit`` also takes ``²`` and ``٣``, which ``int`` refuses."""
_SIG = re.compile(r"[0-9a-f]{40}")


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
    """The contract id a valid, unexpired signature on this request names;
    ``None`` for anything else, however malformed (never an exception)."""
    q = dict(request.query_params)
    sig, exp, cid = q.pop("sig", ""), q.pop("exp", ""), q.pop("cid", "")
    if not (_SIG.fullmatch(sig) and _NUMBER.fullmatch(exp) and _NUMBER.fullmatch(cid)):
        return None
    if int(exp) < time.time():
        return None
    expected = _mac(key, request.url.path, q, int(cid), int(exp))
    return int(cid) if hmac.compare_digest(sig.encode(), expected.encode()) else None
