"""Every table of the registry, importable from one place."""

from __future__ import annotations

from c3n_bot.store.base import Base
from c3n_bot.store.models.community import Activity, Broadcast, BroadcastRecipient, Rsvp
from c3n_bot.store.models.conversations import (
    Alert,
    ChannelCursor,
    ConversationSession,
    DeliveryAttempt,
    InboundMessage,
    OutboxMessage,
    Submission,
)
from c3n_bot.store.models.org import ApiKey, AuditEvent, Center, Network, StaffCenter, StaffUser
from c3n_bot.store.models.people import (
    ChannelIdentity,
    Consent,
    Contact,
    ContactPatient,
    Enrollment,
    Patient,
)
from c3n_bot.store.models.registry import RegistryDelivery
from c3n_bot.store.models.scheduling import Appointment, DueWork, Schedule, ScheduleTemplate

__all__ = [
    "Activity",
    "Alert",
    "ApiKey",
    "ChannelCursor",
    "Appointment",
    "AuditEvent",
    "Base",
    "Broadcast",
    "BroadcastRecipient",
    "Center",
    "ChannelIdentity",
    "Consent",
    "Contact",
    "ContactPatient",
    "ConversationSession",
    "DeliveryAttempt",
    "DueWork",
    "Enrollment",
    "InboundMessage",
    "Network",
    "OutboxMessage",
    "Patient",
    "RegistryDelivery",
    "Rsvp",
    "Schedule",
    "ScheduleTemplate",
    "StaffCenter",
    "StaffUser",
    "Submission",
]
