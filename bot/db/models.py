"""The database schema: every piece of state Veille keeps lives here, so a restart loses nothing.

Rules the schema enforces rather than the code:
- an article is unique per (source, key): a feed re-sending an item can never create a second article;
- a delivery (outbox row) is unique per (chat, kind, dedup_key): whatever crashes or restarts, a chat is
  alerted at most once per article (or story) and kind;
- a subscription's query is unique per chat.
Times are stored as naive UTC and handed back as aware UTC (`UTCDateTime`), the same on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Autoincrementing ids: BIGINT on PostgreSQL, but SQLite only autoincrements "INTEGER PRIMARY KEY".
IdType = BigInteger().with_variant(Integer(), "sqlite")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (SQLite has no time zones)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A Telegram user who talked to the bot."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str | None] = mapped_column(String(256))
    language_code: Mapped[str | None] = mapped_column(String(16))
    banned: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Chat(Base):
    """Where alerts go: a private chat, a group, a supergroup (maybe with topics) or a channel."""

    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16))  # private | group | supergroup | channel
    title: Mapped[str | None] = mapped_column(String(256))
    username: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8), default="fr", server_default="fr")
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Paris", server_default="Europe/Paris")
    link_preview: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    quiet_start: Mapped[str | None] = mapped_column(String(5))  # "22:00", local time
    quiet_end: Mapped[str | None] = mapped_column(String(5))
    is_forum: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    linked_by: Mapped[int | None] = mapped_column(BigInteger)  # channels: the user who linked it
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    inactive_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Subscription(Base):
    """One alert: a query the chat follows, and how its matches are delivered."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("chat_id", "query"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    query: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(128))
    mode: Mapped[str] = mapped_column(String(16), default="instant", server_default="instant")
    digest_time: Mapped[str | None] = mapped_column(String(5))  # "08:00" local, for daily/weekly
    digest_weekday: Mapped[int | None] = mapped_column(Integer)  # 0 = Monday, for weekly
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    muted_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Chosen sources (list of ids) or None for all; sources excluded from this alert by a button.
    source_ids: Mapped[list[int] | None] = mapped_column(JSON)
    excluded_source_ids: Mapped[list[int] | None] = mapped_column(JSON)
    # The noise guard's switch to an hourly digest (issue #7): until when, and whether it was told.
    throttled_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_thread_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Source(Base):
    """A feed Veille polls. All scheduling state lives here, so the scheduler itself keeps none."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    url: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(String(256))
    language: Mapped[str | None] = mapped_column(String(16))
    category: Mapped[str | None] = mapped_column(String(128))
    site_url: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="1")
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    interval_seconds: Mapped[float | None] = mapped_column(Float)
    next_check_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error_kind: Mapped[str | None] = mapped_column(String(32))
    last_error_status: Mapped[int | None] = mapped_column(Integer)
    last_error_message: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    polls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    not_modified_polls: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    hub_url: Mapped[str | None] = mapped_column(Text)  # WebSub
    websub_secret: Mapped[str | None] = mapped_column(String(128))
    websub_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    proposed_by: Mapped[int | None] = mapped_column(BigInteger)  # a user who proposed it from the chat
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Story(Base):
    """Articles about the same event across sources (near-duplicates within a window)."""

    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    first_article_id: Mapped[int | None] = mapped_column(IdType)
    article_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    source_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Article(Base):
    """One item of one source. `key` is the item's stable identity (GUID, canonical link or hash)."""

    __tablename__ = "articles"
    __table_args__ = (
        UniqueConstraint("source_id", "key"),
        Index("ix_articles_first_seen_at", "first_seen_at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(IdType, ForeignKey("sources.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(512))
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="", server_default="")
    text: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(256))
    language: Mapped[str | None] = mapped_column(String(16))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary(16))  # 128-bit SimHash
    story_id: Mapped[int | None] = mapped_column(IdType, index=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Delivery(Base):
    """The outbox: a message to send, written before anything is sent.

    `dedup_key` names what the message is about ("article:42", "story:7", "broadcast:3"); with the chat
    and kind it is unique, which is what makes "never twice" hold across crashes and workers.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("chat_id", "kind", "dedup_key"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        # Buttons and edits find the rows behind a sent message.
        Index("ix_deliveries_chat_message", "chat_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # alert | digest | broadcast | notice | edit
    dedup_key: Mapped[str] = mapped_column(String(128))
    article_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("articles.id", ondelete="SET NULL"))
    story_id: Mapped[int | None] = mapped_column(IdType, index=True)
    broadcast_id: Mapped[int | None] = mapped_column(IdType, index=True)
    # kind "edit": the message to edit (Telegram's id) in this chat.
    edit_message_id: Mapped[int | None] = mapped_column(BigInteger)
    subscription_id: Mapped[int | None] = mapped_column(
        IdType, ForeignKey("subscriptions.id", ondelete="SET NULL")
    )
    matched_terms: Mapped[str | None] = mapped_column(Text)  # JSON list of the terms that fired
    payload: Mapped[str | None] = mapped_column(Text)  # pre-rendered HTML for notices/broadcasts
    reply_markup: Mapped[dict | None] = mapped_column(JSON)  # inline keyboard JSON (broadcast buttons)
    message_thread_id: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Broadcast(Base):
    """An admin's message to many chats, sent through the outbox (issue #8)."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    created_by: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str] = mapped_column(Text)  # Telegram HTML
    photo_file_id: Mapped[str | None] = mapped_column(Text)
    document_file_id: Mapped[str | None] = mapped_column(Text)
    buttons: Mapped[list | None] = mapped_column(JSON)  # [[{"text": ..., "url": ...}], ...]
    audience: Mapped[dict | None] = mapped_column(JSON)  # {"kind": "everyone"|"language"|"term"|"groups", ...}
    status: Mapped[str] = mapped_column(String(16), default="draft", server_default="draft")
    total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    report_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    report_message_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class JobRun(Base):
    """A scheduled job's run, claimed by the first process to start it (issue #9: several processes
    run the same scheduler; a daily admin digest must go out once, not once per process)."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # "admin-digest"
    run_key: Mapped[str] = mapped_column(String(64), primary_key=True)  # "2026-11-27": which run
    claimed_by: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime)
