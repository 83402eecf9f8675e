"""Usage threshold notices: which threshold of which meter was announced in which period."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow


class UsageNotice(db.Model):
    """One crossing of 80% or 100% of a meter's included amount in one billing period.

    The unique key makes the notice (and the email queued with it) exactly once per
    threshold, meter and period, whichever ingestion request gets there first.
    """

    __tablename__ = "usage_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    meter: Mapped[str] = mapped_column(String(64))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime())
    period_end: Mapped[datetime] = mapped_column(UTCDateTime())
    threshold: Mapped[int] = mapped_column(Integer)  # percent of the included amount
    used: Mapped[int] = mapped_column(db.BigInteger)
    included: Mapped[int] = mapped_column(db.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        UniqueConstraint("account_id", "meter", "period_start", "threshold",
                         name="uq_usage_notices_once_per_period"),
        CheckConstraint("threshold IN (80, 100)", name="threshold_known"),
    )
