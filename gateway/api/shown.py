"""The domain's alert and case views mapped to the API's schemas: the one place
REST and the live streams turn them into what a client receives."""

from __future__ import annotations

from sqlalchemy import Row
from sqlalchemy.orm import Session

from gateway.api.security_schemas import AlertOut, CaseOut
from gateway.db.security_models import Alert, Case
from gateway.security.views import AlertView, CaseView, alert_of, case_view


def alert_out(view: AlertView) -> AlertOut:
    return AlertOut.model_validate(view, from_attributes=True)


def case_out_of(view: CaseView) -> CaseOut:
    return CaseOut.model_validate(view, from_attributes=True)


def shown_alert(row: Row[Alert, str, str | None]) -> AlertOut:
    return alert_out(alert_of(row))


def case_out(session: Session, case: Case) -> CaseOut:
    return case_out_of(case_view(session, case))
