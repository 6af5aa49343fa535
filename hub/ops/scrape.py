"""The /metrics document: the processes' counters (hub.ops.metrics), then gauges read from the
database at each scrape: the backlog and the age of the oldest pending delivery per
department, dead letters, events not yet fanned out. Read at scrape time, every worker reports
the same truth, and no process keeps a gauge that goes stale when it dies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from hub.connectors.store import DEAD, PENDING, Delivery
from hub.db import aware
from hub.ops.metrics import process_metrics
from hub.permits.store import Outbox


class _DatabaseState(Collector):
    """Gauges read from the database at scrape time."""

    def __init__(self, engine: Engine, now: datetime) -> None:
        self.engine, self.now = engine, now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        backlog = GaugeMetricFamily(
            "hub_delivery_backlog", "Deliveries pending, by department", labels=["department"]
        )
        oldest = GaugeMetricFamily(
            "hub_delivery_oldest_pending_seconds",
            "Age of the oldest pending delivery, by department",
            labels=["department"],
        )
        dead = GaugeMetricFamily(
            "hub_dead_letters",
            "Dead deliveries awaiting staff, by department",
            labels=["department"],
        )
        unpublished = GaugeMetricFamily(
            "hub_outbox_unpublished", "Committed events not yet fanned out to departments"
        )
        with Session(self.engine) as session:
            rows = session.execute(
                sa.select(
                    col(Delivery.department),
                    col(Delivery.status),
                    sa.func.count(),
                    sa.func.min(col(Delivery.created_at)),
                )
                .where(col(Delivery.status).in_([PENDING, DEAD]))
                .group_by(col(Delivery.department), col(Delivery.status))
            ).all()
            waiting = session.execute(
                sa.select(sa.func.count()).where(col(Outbox.published_at).is_(None))
            ).scalar_one()
        for department, status, count, first in rows:
            if status == PENDING:
                backlog.add_metric([department], count)
                age = (self.now - aware(first)).total_seconds()
                oldest.add_metric([department], max(age, 0.0))
            else:
                dead.add_metric([department], count)
        unpublished.add_metric([], waiting)
        yield from (backlog, oldest, dead, unpublished)


def exposition(engine: Engine, now: datetime) -> bytes:
    """The /metrics document: the processes' counters, then the database's gauges."""
    state = CollectorRegistry(auto_describe=False)
    state.register(_DatabaseState(engine, now))
    return process_metrics() + generate_latest(state)
