"""Which channels this deployment runs: senders for the dispatcher, background receivers."""

from __future__ import annotations

from c3n_bot.config import Settings
from c3n_bot.service.delivery import Sender
from c3n_bot.service.workers import Runtime, Worker
from c3n_bot.store.base import Channel


def build_senders(settings: Settings) -> dict[Channel, Sender]:
    """A sender for every channel whose credentials are configured."""
    senders: dict[Channel, Sender] = {}
    if settings.telegram_enabled:
        from c3n_bot.channels.telegram import TelegramSender

        senders[Channel.TELEGRAM] = TelegramSender(settings)
    if settings.twilio_enabled:
        from c3n_bot.channels.twilio_sms import TwilioSender

        senders[Channel.SMS] = TwilioSender(settings)
    return senders


def build_receivers(runtime: Runtime) -> list[Worker]:
    """Background receivers: Telegram long polling when the bot is not on a webhook."""
    settings = runtime.settings
    if settings.telegram_enabled and settings.telegram_mode == "polling":
        from c3n_bot.channels.telegram import TelegramPoller

        return [TelegramPoller(settings, runtime.sessions, runtime.services, runtime.clock)]
    return []


def register_webhooks(settings: Settings) -> None:
    """Tell Telegram where to post updates (webhook mode); safe to repeat on every start."""
    if settings.telegram_enabled and settings.telegram_mode == "webhook":
        from c3n_bot.channels.telegram import register_webhook

        register_webhook(settings)
