"""Gauges read from the database when ``/metrics`` is scraped: what no single
role counts in memory — devices by health state, alarm cases not yet closed,
outbox rows waiting to be sent, open operator alerts.

They describe the whole site, not the process: every API process reports the
same values, so a dashboard takes ``max`` over instances, not ``sum``. Each
is one indexed count, cheap at a scrape every 15 s or more. While the
database cannot answer they are left out and the process's own are served.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from gateway.db.engine import Database
from gateway.db.models import OperatorAlert, utcnow
from gateway.db.security_models import Case, CaseStatus, Outbox
from gateway.health.devices import counts

log = logging.getLogger(__name__)


def families(db: Database, now: datetime) -> list[GaugeMetricFamily]:
    with db.session() as session:
        devices = GaugeMetricFamily(
            "moydom_devices", "Live devices: all, and per health state", labels=["state"]
        )
        for state, n in counts(session, now).items():
            devices.add_metric([state], n)
        cases = GaugeMetricFamily(
            "moydom_cases_unclosed", "Alarm cases not closed, per status", labels=["status"]
        )
        by_status = dict(
            session.execute(
                select(Case.status, func.count())
                .where(Case.status != CaseStatus.CLOSED)
                .group_by(Case.status)
            ).all()
        )
        for status in (CaseStatus.OPEN, CaseStatus.ACKNOWLEDGED, CaseStatus.DISPATCHED):
            cases.add_metric([status.value], by_status.get(status.value, 0))
        outbox = GaugeMetricFamily(
            "moydom_outbox_pending", "Outbox rows not yet sent nor given up", labels=["channel"]
        )
        for channel, n in session.execute(
            select(Outbox.channel, func.count())
            .where(Outbox.sent_at.is_(None), Outbox.failed_at.is_(None))
            .group_by(Outbox.channel)
        ):
            outbox.add_metric([channel], n)
        alerts = GaugeMetricFamily("moydom_operator_alerts_open", "Open operator alerts")
        alerts.add_metric(
            [],
            session.scalar(
                select(func.count())
                .select_from(OperatorAlert)
                .where(OperatorAlert.cleared_at.is_(None))
            )
            or 0,
        )
    return [devices, cases, outbox, alerts]


class SiteCollector(Collector):
    """This process's registry, then the database gauges, as one collector."""

    def __init__(self, process: Collector, db: Database) -> None:
        self.process = process
        self.db = db

    def collect(self) -> Iterator[Metric]:
        yield from self.process.collect()
        try:
            site = families(self.db, utcnow())
        except SQLAlchemyError:
            # The process's own metrics matter most while the database is down.
            log.warning("metrics: database gauges unavailable", exc_info=True)
            return
        yield from site
