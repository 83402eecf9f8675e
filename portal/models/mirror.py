"""The columns every row mirrored from a Stripe object carries (written only by services.sync)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import String
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from portal.extensions import db
from portal.models.types import UTCDateTime, utcnow


class StripeMirror:
    """A local copy of one Stripe object: its id, the version applied, when, and its `created`.

    A subclass names its Stripe id column in `__stripe_id__` (`stripe_invoice_id`, ...). One
    whose Stripe object may not exist yet (an account before its customer) sets
    `__stripe_optional__`, which lets the id, `stripe_created` and `synced_at` be empty.
    """

    __stripe_id__: ClassVar[str]
    __stripe_optional__: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Added before the declarative mapping runs, so each model keeps its own id name.
        if "__stripe_id__" in cls.__dict__:
            setattr(cls, cls.__stripe_id__, mapped_column(
                String(255), unique=True, nullable=cls.__stripe_optional__))
        super().__init_subclass__(**kwargs)

    @declared_attr
    def stripe_created(cls) -> Mapped[datetime | None]:
        """Stripe's `created` time of the object."""
        return mapped_column(UTCDateTime(), nullable=cls.__stripe_optional__)

    @declared_attr
    def version(cls) -> Mapped[int]:
        """Stripe `created` of the newest event applied; older deliveries never overwrite."""
        return mapped_column(default=0)

    @declared_attr
    def synced_at(cls) -> Mapped[datetime | None]:
        """When the sync last wrote this row."""
        return mapped_column(UTCDateTime(), nullable=cls.__stripe_optional__,
                             default=None if cls.__stripe_optional__ else utcnow)

    @classmethod
    def stripe_id_column(cls):
        """Return the mapped column holding the Stripe id, for queries."""
        return getattr(cls, cls.__stripe_id__)

    @property
    def stripe_id(self) -> str | None:
        """Return this row's Stripe id."""
        return getattr(self, self.__stripe_id__)


class MirrorTombstone(db.Model):
    """A Stripe object the mirror saw deleted (detached card, deleted customer or tax id).

    Versioned like a mirror row: an event about the object that is not newer than the
    deletion is stale and never brings the row back.
    """

    __tablename__ = "mirror_tombstones"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_id: Mapped[str] = mapped_column(String(255), unique=True)
    object_type: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(default=0)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class MirrorFetch(db.Model):
    """The last copy of a Stripe object the mirror took from the API rather than from an event.

    `version` is the version that copy was written with; `asked_at` is when the portal asked
    Stripe for it (None when not known, as for the copy a view got back from a change it
    made). Stripe's copy is at least as new as every event Stripe sent before it was asked
    for, so an event received before `asked_at` can bring nothing newer.
    """

    __tablename__ = "mirror_fetches"

    id: Mapped[int] = mapped_column(primary_key=True)
    stripe_id: Mapped[str] = mapped_column(String(255), unique=True)
    version: Mapped[int] = mapped_column(default=0)
    asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
