"""The fake Bot API answers the real python-telegram-bot `Bot` as Telegram does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import httpx
import pytest
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter

from tests.fakes.limits import ManualClock
from tests.fakes.server import LoopbackServer, Request, Response, json_response
from tests.fakes.telegram import FakeTelegramApi

CHAT = 4242
KEYBOARD = InlineKeyboardMarkup(
    [
        [InlineKeyboardButton("Not at all", callback_data="q1:0")],
        [InlineKeyboardButton("Several days", callback_data="q1:1")],
    ]
)


@pytest.fixture
def api() -> Iterator[FakeTelegramApi]:
    with FakeTelegramApi() as fake:
        yield fake


@pytest.fixture
async def bot(api: FakeTelegramApi) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url) as bot:
        yield bot


async def test_get_me_answers_the_bot_user(bot: Bot, api: FakeTelegramApi) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456789, "c3n_test_bot", True)
    assert api.calls[0][0] == "getMe"  # from Bot.initialize


async def test_send_message_records_the_keyboard_and_returns_a_message(
    bot: Bot, api: FakeTelegramApi
) -> None:
    first = await bot.send_message(CHAT, "Little interest?", reply_markup=KEYBOARD)
    second = await bot.send_message(CHAT, "Next", parse_mode="HTML")
    assert (first.message_id, second.message_id) == (1, 2)
    assert (first.chat.id, first.text, first.reply_markup) == (CHAT, "Little interest?", KEYBOARD)
    assert first.date.tzinfo is not None
    assert api.sent[0]["chat_id"] == CHAT
    assert api.sent[0]["reply_markup"]["inline_keyboard"][1][0] == {
        "text": "Several days",
        "callback_data": "q1:1",
    }
    assert (api.sent[1]["parse_mode"], api.sent[1]["message_id"]) == ("HTML", 2)


async def test_a_button_press_is_answered_once_and_the_message_edited(
    bot: Bot, api: FakeTelegramApi
) -> None:
    sent = await bot.send_message(CHAT, "Little interest?", reply_markup=KEYBOARD)
    update = Update.de_json(api.callback_update(CHAT, "q1:1", sent.message_id), bot)
    query = update.callback_query
    assert query is not None and query.message is not None
    assert (query.data, query.message.message_id, query.from_user.id) == ("q1:1", 1, CHAT)

    assert await bot.answer_callback_query(query.id, text="Saved")
    assert api.answers == [{"callback_query_id": query.id, "text": "Saved"}]
    with pytest.raises(BadRequest, match="(?i)query is too old"):
        await bot.answer_callback_query(query.id)

    edited = await bot.edit_message_text("Little interest? Several days", CHAT, sent.message_id)
    assert not isinstance(edited, bool) and edited.reply_markup is None
    with pytest.raises(BadRequest, match="(?i)message is not modified"):
        await bot.edit_message_text("Little interest? Several days", CHAT, sent.message_id)


async def test_get_updates_drops_confirmed_updates(bot: Bot, api: FakeTelegramApi) -> None:
    queued = [api.queue_update(api.text_update(CHAT, text)) for text in ("/start abc", "hi", "2")]
    ids = [update["update_id"] for update in queued]
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == ids
    assert [u.update_id for u in await bot.get_updates(offset=ids[1], timeout=0)] == ids[1:]
    assert await bot.get_updates(offset=ids[2] + 1, timeout=0) == ()
    assert await bot.get_updates(timeout=0) == ()  # confirmed ones never come back

    start = Update.de_json(queued[0], bot).message
    assert start is not None and start.parse_entities() != {}


async def test_get_updates_long_polls_until_an_update_arrives(
    bot: Bot, api: FakeTelegramApi
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    while len(api.calls) < 2:  # getMe, then the poll reached the fake
        await asyncio.sleep(0.005)
    update = api.queue_update(api.text_update(CHAT, "hello"))
    updates = await asyncio.wait_for(poll, timeout=5)
    assert [u.update_id for u in updates] == [update["update_id"]]


async def test_stop_ends_a_long_poll(bot: Bot, api: FakeTelegramApi) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=30))
    while len(api.calls) < 2:
        await asyncio.sleep(0.005)
    await asyncio.to_thread(api.stop)
    assert await asyncio.wait_for(poll, timeout=5) == ()


async def test_wait_sent_waits_for_messages_sent_elsewhere(bot: Bot, api: FakeTelegramApi) -> None:
    sending = asyncio.create_task(bot.send_message(CHAT, "x"))
    sent = await asyncio.to_thread(api.wait_sent, 1)
    await sending
    assert [m["text"] for m in sent] == ["x"]
    with pytest.raises(TimeoutError):
        api.wait_sent(2, timeout=0.01)


async def test_webhook_is_recorded_and_excludes_get_updates(bot: Bot, api: FakeTelegramApi) -> None:
    url = "https://bot.example.org/webhooks/telegram"
    allowed = ["message", "callback_query"]
    assert await bot.set_webhook(url, secret_token="s3cret_-X", allowed_updates=allowed)
    assert api.webhook is not None
    assert (api.webhook["url"], api.webhook["secret_token"]) == (url, "s3cret_-X")
    assert api.webhook["allowed_updates"] == allowed
    assert (await bot.get_webhook_info()).url == url
    with pytest.raises(Conflict):
        await bot.get_updates(timeout=0)
    assert await bot.delete_webhook()
    assert api.webhook is None and (await bot.get_webhook_info()).url == ""


async def test_deliver_update_posts_to_the_webhook_with_its_secret(
    bot: Bot, api: FakeTelegramApi
) -> None:
    received: list[Request] = []

    def app(request: Request) -> Response:
        received.append(request)
        return json_response(200, {})

    with LoopbackServer(app) as server:
        await bot.set_webhook(f"{server.url}/webhooks/telegram", secret_token="abc")
        update = api.text_update(CHAT, "hi")
        assert api.deliver_update(update, post=httpx.post).status_code == 200
    assert received[0].headers["x-telegram-bot-api-secret-token"] == "abc"
    assert received[0].params() == update


async def test_flood_answer_raises_retry_after(bot: Bot, api: FakeTelegramApi) -> None:
    api.fail_next("sendMessage", 429, retry_after=7)
    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(CHAT, "x")
    assert flood.value.retry_after == timedelta(seconds=7)
    assert api.violations == 0  # injected, not caused by the client
    assert (await bot.send_message(CHAT, "x")).message_id == 1


async def test_blocked_chat_raises_forbidden(bot: Bot, api: FakeTelegramApi) -> None:
    api.block_chat(CHAT)
    for _ in range(2):
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(CHAT, "x")
    assert api.sent == []


async def test_injected_errors_map_to_ptb_exceptions(bot: Bot, api: FakeTelegramApi) -> None:
    api.fail_next("sendMessage", 400, "Bad Request: chat not found")
    api.fail_next("sendMessage", 502)
    api.fail_next("sendMessage", 500)
    api.fail_next("sendMessage", 403, times=1)
    with pytest.raises(BadRequest, match="(?i)chat not found"):
        await bot.send_message(CHAT, "x")
    for _ in range(2):
        with pytest.raises(NetworkError):
            await bot.send_message(CHAT, "x")
    with pytest.raises(Forbidden):
        await bot.send_message(CHAT, "x")


async def test_refuses_what_telegram_refuses(bot: Bot) -> None:
    with pytest.raises(BadRequest, match="(?i)message is too long"):
        await bot.send_message(CHAT, "x" * 4097)
    long_data = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="d" * 65)]])
    with pytest.raises(BadRequest, match="(?i)button_data_invalid"):
        await bot.send_message(CHAT, "x", reply_markup=long_data)


async def test_unknown_token_is_unauthorized(api: FakeTelegramApi) -> None:
    with pytest.raises(InvalidToken, match="rejected"):
        async with Bot("987:wrong", base_url=api.base_url):
            pass  # initialize() calls getMe


async def test_enforced_limits_answer_429_and_count_violations(clock: ManualClock) -> None:
    with FakeTelegramApi(clock=clock) as api:
        api.enforce_limits(global_per_second=3, per_chat_per_second=1)
        async with Bot(api.token, base_url=api.base_url) as bot:
            await bot.send_message(1, "a")
            with pytest.raises(RetryAfter):  # chat 1 twice within a second
                await bot.send_message(1, "b")
            await bot.send_message(2, "c")
            await bot.send_message(3, "d")
            with pytest.raises(RetryAfter):  # a 4th chat: 3/s overall
                await bot.send_message(4, "e")
            clock.now += 1.0
            await bot.send_message(1, "f")
            await bot.send_message(4, "g")
    assert api.violations == 2
    assert [(m["chat_id"], m["text"]) for m in api.sent] == [
        (1, "a"),
        (2, "c"),
        (3, "d"),
        (1, "f"),
        (4, "g"),
    ]
