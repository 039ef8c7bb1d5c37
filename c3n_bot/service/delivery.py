"""The contract between the dispatcher and the channels: what to send, and how it went."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from c3n_bot.store.base import Channel

MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class Outgoing:
    """One outbox row as a channel sees it (channels never touch the database)."""

    id: int
    channel: Channel
    address: str
    kind: str
    body: str
    # choices, hint, show_options; for kind "ack": the provider's callback to answer.
    payload: dict[str, Any] = field(default_factory=dict)
    attempts: int = 0


@dataclass(frozen=True)
class SendResult:
    """What a channel made of one send: sent, or retry later, or failed for good."""

    outcome: str  # "sent" | "retry" | "failed"
    provider_message_id: str | None = None
    retry_after: float | None = None
    status_code: int | None = None
    error_code: str | None = None
    detail: str | None = None
    # The provider says this address refuses messages (bot blocked, number unsubscribed).
    stop_identity: bool = False
    # Kept in the row's payload so a retry resumes a multi-part send where it stopped.
    progress: dict[str, Any] | None = None


class Sender(Protocol):
    """A channel's outbound half."""

    channel: Channel

    def send(self, message: Outgoing) -> SendResult:
        """Deliver one message to the provider; never raises for provider errors."""
        ...

    def rate_key(self, message: Outgoing) -> str | None:
        """The per-recipient rate bucket of a message (a chat), or None."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True)
class RateLimit:
    """Messages per second allowed overall and per recipient on one channel."""

    per_second: float
    per_recipient_per_second: float | None = None


class LocalSender:
    """The web simulator and console read their messages from the outbox itself."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def send(self, message: Outgoing) -> SendResult:
        """Nothing leaves the process: the row is the delivery."""
        return SendResult(outcome="sent", provider_message_id=f"local-{message.id}")

    def rate_key(self, message: Outgoing) -> str | None:
        """Local channels have no provider limits."""
        return None

    def close(self) -> None:
        """Nothing to release."""


def local_senders() -> dict[Channel, Sender]:
    """Senders that need no credentials."""
    return {Channel.WEB: LocalSender(Channel.WEB), Channel.CONSOLE: LocalSender(Channel.CONSOLE)}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header in seconds (at most an hour); None if absent or a date."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)
