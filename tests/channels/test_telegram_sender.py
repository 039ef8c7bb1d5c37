"""TelegramSender against the fake Bot API through the real python-telegram-bot `Bot`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from c3n_bot.channels.telegram import TelegramSender, classify
from c3n_bot.channels.telegram_client import seconds
from c3n_bot.channels.telegram_render import (
    MAX_CALLBACK_DATA_BYTES,
    CallbackDataTooLong,
    callback_data,
    split_text,
    units,
)
from c3n_bot.config import Settings, data_dir
from c3n_bot.engine.definitions import ItemType
from c3n_bot.engine.events import Choice
from c3n_bot.engine.runner import SUBJECT
from c3n_bot.service.delivery import Outgoing, SendResult
from c3n_bot.service.flows import FlowCatalog
from c3n_bot.store.base import Channel
from tests.fakes import FakeTelegramApi, ManualClock

CHAT = 4242
FREQUENCY = [
    Choice("q1", "LA6568-5", "Not at all", "0"),
    Choice("q1", "LA6569-3", "Several days", "1"),
]


@pytest.fixture
def fake_clock() -> ManualClock:
    """The fake's flood-control clock."""
    return ManualClock()


@pytest.fixture
def api(fake_clock: ManualClock) -> Iterator[FakeTelegramApi]:
    """The fake Bot API on loopback."""
    with FakeTelegramApi(clock=fake_clock) as fake:
        yield fake


def telegram_settings(api_url: str, token: str) -> Settings:
    """Settings with only the Telegram channel configured (no database is used here)."""
    return Settings(
        demo=True,
        database_url="sqlite:///unused.db",
        telegram_token=SecretStr(token),
        telegram_api_url=api_url,
    )


@pytest.fixture
def sender(clean_env: Path, api: FakeTelegramApi) -> Iterator[TelegramSender]:
    """The sender on the fake, closed after the test."""
    sender = TelegramSender(telegram_settings(api.url, api.token))
    yield sender
    sender.close()


def outgoing(body: str, *, kind: str = "reply", **payload: Any) -> Outgoing:
    """An outbox row to the test chat."""
    return Outgoing(
        id=1, channel=Channel.TELEGRAM, address=str(CHAT), kind=kind, body=body, payload=payload
    )


def choices(*options: Choice) -> list[dict[str, Any]]:
    """Choices as the outbox stores them."""
    return [asdict(option) for option in options]


# -- messages -----------------------------------------------------------------------------


def test_a_text_goes_out_as_is(sender: TelegramSender, api: FakeTelegramApi) -> None:
    result = sender.send(outgoing("Hello", hint=None, choices=[]))
    assert result == SendResult("sent", provider_message_id="1")
    assert [(m["chat_id"], m["text"], "reply_markup" in m) for m in api.sent] == [
        (CHAT, "Hello", False)
    ]
    assert [call[0] for call in api.calls] == ["getMe", "sendMessage"]


def test_choices_become_one_button_per_row_and_no_hint(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    result = sender.send(
        outgoing("(1 of 9) Little interest?", choices=choices(*FREQUENCY), hint="Reply 0-3")
    )
    assert result.outcome == "sent"
    [message] = api.sent
    assert message["text"] == "(1 of 9) Little interest?"
    assert message["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Not at all", "callback_data": "q1:LA6568-5"}],
            [{"text": "Several days", "callback_data": "q1:LA6569-3"}],
        ]
    }


def test_items_without_buttons_say_what_to_type(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    sender.send(outgoing("How many stools today?", choices=[], hint="Reply with a number 0-30"))
    assert api.sent[0]["text"] == "How many stools today?\n(Reply with a number 0-30)"


def test_the_bot_is_initialized_once(sender: TelegramSender, api: FakeTelegramApi) -> None:
    for _ in range(3):
        sender.send(outgoing("Hi"))
    assert [call[0] for call in api.calls].count("getMe") == 1


def test_a_long_text_is_split_with_the_keyboard_on_the_last_part(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    lines = [f"Line {n}: " + "word " * 30 for n in range(200)]  # about 31 000 characters
    body = "\n".join(line.strip() for line in lines)
    result = sender.send(outgoing(body, choices=choices(*FREQUENCY)))
    parts = [m["text"] for m in api.sent]
    assert len(parts) == 8 and all(units(part) <= 4096 for part in parts)
    assert "\n".join(parts) == body  # cut at line ends only: nothing lost, nothing added
    assert ["reply_markup" in m for m in api.sent] == [False] * 7 + [True]
    assert result.provider_message_id == str(api.sent[-1]["message_id"])


def test_a_multi_part_send_resumes_where_it_stopped(
    sender: TelegramSender, api: FakeTelegramApi, fake_clock: ManualClock
) -> None:
    api.enforce_limits(per_chat_per_second=1)
    body = "\n".join(["a" * 4000, "b" * 4000, "c" * 200])
    first = sender.send(outgoing(body))
    assert (first.outcome, first.retry_after) == ("retry", 1.0)
    assert first.progress == {"parts_sent": 1, "last_message_id": 1}

    fake_clock.now += 1
    second = sender.send(outgoing(body, **first.progress))
    assert second.progress == {"parts_sent": 2, "last_message_id": 2}
    fake_clock.now += 1
    third = sender.send(outgoing(body, **second.progress))
    assert third == SendResult("sent", provider_message_id="3")
    assert [m["text"][0] for m in api.sent] == ["a", "b", "c"]


def test_split_prefers_line_ends_then_spaces() -> None:
    assert split_text("short") == ["short"]
    assert split_text("aaa\nbbb\nccc", limit=7) == ["aaa\nbbb", "ccc"]
    assert split_text("one two three four", limit=9) == ["one two", "three", "four"]
    assert split_text("abcdefghij", limit=4) == ["abcd", "efgh", "ij"]
    assert split_text("x\n\n\n\ny", limit=2) == ["x", "y"]


def test_split_counts_emoji_as_telegram_does() -> None:
    text = "\N{GRINNING FACE}" * 5  # 10 UTF-16 units
    assert units(text) == 10
    assert split_text(text, limit=4) == ["\N{GRINNING FACE}" * 2] * 2 + ["\N{GRINNING FACE}"]


# -- errors -------------------------------------------------------------------------------


def test_flood_control_is_retried_after_the_time_telegram_asks(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    api.fail_next("sendMessage", 429, retry_after=7)
    result = sender.send(outgoing("Hi"))
    assert (result.outcome, result.retry_after, result.status_code) == ("retry", 7.0, 429)
    assert not result.stop_identity


def test_a_blocked_bot_fails_the_row_and_stops_the_chat(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    api.block_chat(CHAT)
    result = sender.send(outgoing("Hi"))
    assert (result.outcome, result.status_code, result.stop_identity) == ("failed", 403, True)
    assert result.detail is not None and "blocked" in result.detail


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried(
    sender: TelegramSender, api: FakeTelegramApi, status: int
) -> None:
    api.fail_next("sendMessage", status)
    result = sender.send(outgoing("Hi"))
    assert (result.outcome, result.stop_identity) == ("retry", False)
    assert result.retry_after is None  # the dispatcher's backoff decides
    assert sender.send(outgoing("Hi")).outcome == "sent"


def test_a_missing_chat_fails_and_stops_other_bad_requests_only_fail(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    api.fail_next("sendMessage", 400, "Bad Request: chat not found")
    gone = sender.send(outgoing("Hi"))
    assert (gone.outcome, gone.error_code, gone.stop_identity) == ("failed", "chat_not_found", True)
    api.fail_next("sendMessage", 400, "Bad Request: can't parse entities")
    bad = sender.send(outgoing("Hi"))
    assert (bad.outcome, bad.error_code, bad.stop_identity) == ("failed", "bad_request", False)


def test_an_unreachable_api_is_retried(clean_env: Path) -> None:
    with FakeTelegramApi() as stopped:
        url, token = stopped.url, stopped.token
    sender = TelegramSender(telegram_settings(url, token))
    try:
        result = sender.send(outgoing("Hi"))
    finally:
        sender.close()
    assert (result.outcome, result.error_code) == ("retry", "network")


def test_errors_are_classified_without_the_network() -> None:
    assert classify(TimedOut(), "timed out").outcome == "retry"
    assert classify(NetworkError("Bad Gateway"), "x").outcome == "retry"
    assert classify(RetryAfter(timedelta(seconds=3)), "x").retry_after == 3.0
    assert classify(Forbidden("Forbidden: user is deactivated"), "x").stop_identity
    assert classify(BadRequest("Bad Request: message is too long"), "x").outcome == "failed"
    assert seconds(timedelta(seconds=2.5)) == 2.5
    assert seconds(4) == 4.0


def test_errors_never_carry_the_token(sender: TelegramSender, api: FakeTelegramApi) -> None:
    api.fail_next("sendMessage", 400, f"Bad Request: {api.token} is odd")
    result = sender.send(outgoing("Hi"))
    assert result.detail is not None and api.token not in result.detail


# -- button presses -----------------------------------------------------------------------


def press(sender: TelegramSender, api: FakeTelegramApi) -> tuple[str, int]:
    """Send a question with buttons and press one: the callback query id and message id."""
    sender.send(outgoing("Little interest?", choices=choices(*FREQUENCY)))
    message_id = api.sent[-1]["message_id"]
    query = api.callback_update(CHAT, "q1:LA6569-3", message_id)["callback_query"]
    return str(query["id"]), int(message_id)


def ack(query_id: str, message_id: int, edit_text: str | None, **payload: Any) -> Outgoing:
    """The acknowledgement row the service writes for a button press."""
    answer: dict[str, Any] = {"callback_query_id": query_id, "message_id": message_id}
    if edit_text is not None:
        answer["edit_text"] = edit_text
    return outgoing("", kind="ack", ack=answer, force=True, **payload)


def test_a_press_is_answered_and_the_choice_shown_without_buttons(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    query_id, message_id = press(sender, api)
    shown = "Little interest?\n\n✓ Several days"
    result = sender.send(ack(query_id, message_id, shown))
    assert result == SendResult("sent")
    assert api.answers == [{"callback_query_id": query_id}]
    assert api.edits == [{"chat_id": CHAT, "message_id": message_id, "text": shown}]


def test_an_expired_query_still_shows_the_choice(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    _query_id, message_id = press(sender, api)
    result = sender.send(ack("no-such-query", message_id, "Little interest?\n\n✓ Several days"))
    assert result.outcome == "sent"
    assert (api.answers, len(api.edits)) == ([], 1)


def test_an_unchanged_message_counts_as_shown(sender: TelegramSender, api: FakeTelegramApi) -> None:
    query_id, message_id = press(sender, api)
    shown = "Little interest?\n\n✓ Several days"
    assert sender.send(ack(query_id, message_id, shown)).outcome == "sent"
    again = api.callback_update(CHAT, "q1:LA6569-3", message_id)["callback_query"]["id"]
    assert sender.send(ack(again, message_id, shown)).outcome == "sent"  # "not modified"
    assert len(api.answers) == 2 and len(api.edits) == 1


def test_a_press_without_an_edit_is_only_answered(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    query_id, message_id = press(sender, api)
    assert sender.send(ack(query_id, message_id, None)).outcome == "sent"
    assert (len(api.answers), api.edits) == (1, [])


def test_a_failed_edit_is_retried_without_answering_twice(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    query_id, message_id = press(sender, api)
    shown = "Little interest?\n\n✓ Several days"
    api.fail_next("editMessageText", 502)
    first = sender.send(ack(query_id, message_id, shown))
    assert (first.outcome, first.progress) == ("retry", {"answered": True})
    second = sender.send(ack(query_id, message_id, shown, answered=True))
    assert second.outcome == "sent"
    assert [call[0] for call in api.calls].count("answerCallbackQuery") == 1
    assert len(api.edits) == 1


def test_acknowledgements_have_their_own_rate_bucket(sender: TelegramSender) -> None:
    assert sender.rate_key(outgoing("Hi")) == str(CHAT)
    assert sender.rate_key(ack("q", 1, None)) == f"{CHAT}:ack"


# -- callback data ------------------------------------------------------------------------


def test_callback_data_over_64_bytes_fails_loudly(
    sender: TelegramSender, api: FakeTelegramApi
) -> None:
    with pytest.raises(CallbackDataTooLong):
        callback_data("q" * 40, "c" * 24)
    long_item = Choice("q" * 61, "yes", "Yes", "1")
    result = sender.send(outgoing("Question?", choices=choices(long_item)))
    assert (result.outcome, result.error_code) == ("failed", "callback_data")
    assert api.sent == []


def test_every_button_of_every_shipped_flow_fits_the_callback_data() -> None:
    catalog = FlowCatalog.from_dir(data_dir("flows"))
    checked = 0
    for flow in catalog.all():
        for item in flow.questions():
            codes = ["yes", "no"] if item.type == ItemType.BOOLEAN else []
            for code in codes + [option.code for option in item.options]:
                data = callback_data(item.id, code)
                assert len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
                checked += 1
    assert checked > 50
    # A parent picks the child: the patient id (a UUID) is the code.
    assert len(callback_data(SUBJECT, str(uuid.uuid4())).encode()) <= MAX_CALLBACK_DATA_BYTES


def test_close_then_send_starts_afresh(sender: TelegramSender, api: FakeTelegramApi) -> None:
    assert sender.send(outgoing("one")).outcome == "sent"
    sender.close()
    sender.close()  # twice is harmless
    assert sender.send(outgoing("two")).outcome == "sent"
    assert [call[0] for call in api.calls].count("getMe") == 2
