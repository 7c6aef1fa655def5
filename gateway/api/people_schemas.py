"""Bodies of the people routes: contact details, passwords, reset codes,
members and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from gateway.api.schemas import DEVICE_ID, EMAIL, PHONE, Email, Login, Password, Phone, Request
from gateway.people.permissions import Permission

MemberLogin = Annotated[str, StringConstraints(pattern=f"{PHONE}|{EMAIL}", max_length=254)]
"""A member logs in with their phone or e-mail."""
Name = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,64}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Grants = dict[Annotated[str, StringConstraints(pattern=DEVICE_ID)], list[Permission]]


class ContactsIn(Request):
    """The reset channels billing knows; null clears one."""

    phone: Phone | None = Field(description="E.164, e.g. +79130000001")
    email: Email | None


class PasswordSet(Request):
    password: Password


class PasswordChange(Request):
    old_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Password


class ResetRequest(Request):
    login: Login = Field(description="contract number, or a member's phone or e-mail")
    channel: Literal["sms", "email"] | None = Field(
        default=None, description="the owner's preferred channel, if both are known"
    )


class ResetAccepted(BaseModel):
    detail: str


class ResetConfirm(Request):
    login: Login
    code: Code
    new_password: Password


class MemberCreate(Request):
    login: MemberLogin
    password: Password
    name: Name | None = None
    permissions: Grants = Field(
        default_factory=dict, description="home id -> what the member may do there"
    )


class MemberChange(Request):
    name: Name | None = None
    permissions: Grants | None = Field(default=None, description="replaces all of them")
    password: Password | None = Field(default=None, description="ends the member's sessions")


class MemberOut(BaseModel):
    id: int
    login: str
    name: str | None
    role: str
    permissions: dict[str, list[str]]
    created_at: datetime


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor_kind: str
    actor: str
    contract: str | None
    home: str | None
    device: str | None
    action: str
    detail: dict[str, Any]
    address: str | None


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next, older page")
