"""Web Push: the gateway's VAPID key and the caller's browser subscriptions.

A subscription belongs to the login that posted it (the owner or one
member); another login, let alone another contract, neither lists nor
deletes it (404). A member allowed nothing in any home gets 403, as on the
other routes that tell of the home. What is pushed, and when, is decided
with the alerts (``gateway.security.alerts``), by the ``push`` channel of
``/me/notifications``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Response, status
from starlette.requests import HTTPConnection

from gateway.api.deps import BearerDep, CtxDep, RowId, SessionDep, subscriber_from_token
from gateway.api.push_schemas import PushKey, PushSubscribe, PushSubscriptionOut
from gateway.api.schemas import errors
from gateway.db.models import utcnow
from gateway.errors import Forbidden, Invalid, InvalidCredentials
from gateway.notify import subscriptions
from gateway.notify.webpush import application_server_key
from gateway.people.permissions import held
from gateway.settings import Settings
from gateway.tokens import Principal

router = APIRouter(prefix="/push", tags=["push"], responses=errors(401, 403))

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def push_login(
    conn: HTTPConnection, ctx: CtxDep, session: SessionDep, creds: BearerDep
) -> Principal:
    """The owner, or a member allowed something in some home."""
    if creds is None:
        raise InvalidCredentials("bearer token required")
    principal = subscriber_from_token(ctx, session, creds.credentials)
    if principal.member_id is not None and not held(session, principal.member_id):
        raise Forbidden("this member is allowed nothing to be told about")
    conn.scope["moydom.principal"] = principal
    return principal


PushLogin = Annotated[Principal, Depends(push_login)]


def check_endpoint(endpoint: str, settings: Settings) -> None:
    """https only; http to loopback when ``push_allow_http_loopback`` (tests)."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise Invalid("endpoint is not a URL") from exc
    if not host or parts.username or parts.password:
        raise Invalid("endpoint must be an https URL with a host and no credentials")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and settings.push_allow_http_loopback and host in LOOPBACK:
        return
    raise Invalid("endpoint must be an https URL")


@router.get("/key", response_model=PushKey)
def push_key(_login: PushLogin, ctx: CtxDep) -> PushKey:
    """The VAPID public key to subscribe with (``applicationServerKey``)."""
    return PushKey(application_server_key=application_server_key(ctx.secrets.vapid_private_key))


@router.get("/subscriptions", response_model=list[PushSubscriptionOut])
def list_subscriptions(login: PushLogin, session: SessionDep) -> list[PushSubscriptionOut]:
    """The caller's own subscriptions (this login's browsers)."""
    rows = subscriptions.listing(session, login.contract_id, login.member_id)
    return [
        PushSubscriptionOut(id=r.id, endpoint=r.endpoint, created_at=r.created_at) for r in rows
    ]


@router.post(
    "/subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=PushSubscriptionOut,
    responses=errors(422),
)
def subscribe(body: PushSubscribe, login: PushLogin, ctx: CtxDep) -> PushSubscriptionOut:
    """Keep this browser's subscription for the caller's login; posting the
    same endpoint again replaces it (new keys, or another login now)."""
    check_endpoint(body.endpoint, ctx.settings)
    with ctx.db.transaction() as session:
        row = subscriptions.subscribe(
            session,
            login.contract_id,
            login.member_id,
            endpoint=body.endpoint,
            p256dh=body.keys.p256dh,
            auth=body.keys.auth,
            now=utcnow(),
        )
        return PushSubscriptionOut(id=row.id, endpoint=row.endpoint, created_at=row.created_at)


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=errors(404),
)
def unsubscribe(subscription_id: RowId, login: PushLogin, ctx: CtxDep) -> Response:
    """Forget one of the caller's subscriptions; anyone else's is 404."""
    with ctx.db.transaction() as session:
        subscriptions.remove(session, login.contract_id, login.member_id, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
