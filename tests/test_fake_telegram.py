"""The fake Bot API server answers aiogram's real client the way Telegram does."""

import asyncio

import aiohttp
import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BufferedInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)

from tests.fakes.telegram_api import FakeTelegram, HtmlEntityError, check_telegram_html

TOKEN = "123456:TEST-token"


@pytest.fixture
async def fake():
    server = FakeTelegram(token=TOKEN, bot_username="veille_test_bot", max_poll_timeout=0.5)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(fake):
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
    client = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    yield client
    await close_quickly(client)


async def close_quickly(client: Bot) -> None:
    # AiohttpSession.close() sleeps 0.25 s for TLS shutdown; there is no TLS on 127.0.0.1, and 40
    # tests times 0.25 s would double this file's run time.
    http = await client.session.create_session()
    await http.close()


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text=d, callback_data=d) for d in data]])


async def test_get_me_describes_the_bot(bot):
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "veille_test_bot", True)


async def test_send_message_returns_a_message_with_the_chat_and_increasing_ids(bot, fake):
    first = await bot.send_message(42, "<b>Alerte</b> : l’OTAN &amp; l'Azerbaïdjan", reply_markup=keyboard("stop"))
    second = await bot.send_message(42, "deuxième")
    other = await bot.send_message(-1001234567890, "dans un groupe")
    assert (first.chat.id, first.chat.type, first.message_id) == (42, "private", 1)
    assert second.message_id == 2 and other.message_id == 1 and other.chat.type == "supergroup"
    assert first.text == "Alerte : l’OTAN & l'Azerbaïdjan"
    assert first.from_user.username == "veille_test_bot"
    assert first.reply_markup.inline_keyboard[0][0].callback_data == "stop"
    sent = fake.sent(42)
    assert [m.text for m in sent] == ["<b>Alerte</b> : l’OTAN &amp; l'Azerbaïdjan", "deuxième"]
    assert sent[0].parse_mode == "HTML" and sent[0].buttons[0]["callback_data"] == "stop"
    assert [m.message_id for m in fake.sent()] == [1, 2, 1]


async def test_a_blocked_chat_raises_forbidden(bot, fake):
    fake.block(42)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(42, "bonjour")
    assert fake.sent(42) == [] and fake.errors[-1].status == 403


async def test_flood_wait_raises_retry_after_once(bot, fake):
    fake.flood_wait(42, 7)
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(42, "trop vite")
    assert caught.value.retry_after == 7
    assert fake.too_many_requests == 1
    assert (await bot.send_message(42, "ensuite")).message_id == 1


async def test_a_migrated_group_raises_migrate_to_chat(bot, fake):
    fake.migrate(-555, -1001234567890)
    with pytest.raises(TelegramMigrateToChat) as caught:
        await bot.send_message(-555, "groupe")
    assert caught.value.migrate_to_chat_id == -1001234567890
    message = await bot.send_message(caught.value.migrate_to_chat_id, "supergroupe")
    assert message.chat.type == "supergroup"


async def test_get_updates_returns_pushed_updates_in_order_and_offset_confirms(bot, fake):
    first = fake.push_message(42, "/start", username="marie")
    second = fake.push_message(42, "OTAN Azerbaïdjan")
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [first["update_id"], second["update_id"]]
    assert updates[0].message.text == "/start" and updates[0].message.entities[0].type == "bot_command"
    assert updates[0].message.from_user.language_code == "fr"
    assert updates[1].message.message_id == 2
    again = await bot.get_updates(offset=updates[0].update_id + 1, timeout=0)
    assert [u.update_id for u in again] == [second["update_id"]]
    assert await bot.get_updates(offset=second["update_id"] + 1, timeout=0) == []


async def test_long_poll_returns_as_soon_as_an_update_arrives(bot, fake):
    fake.max_poll_timeout = 5.0
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await fake.wait_until(lambda: len(fake.calls("getUpdates")) == 1, timeout=5)
    assert not poll.done()
    update = fake.push_message(42, "coucou")
    updates = await asyncio.wait_for(poll, 4)
    assert [u.update_id for u in updates] == [update["update_id"]]


async def test_a_second_poller_terminates_the_first_with_conflict(bot, fake):
    fake.max_poll_timeout = 5.0
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await fake.wait_until(lambda: len(fake.calls("getUpdates")) == 1, timeout=5)
    second = asyncio.create_task(bot.get_updates(timeout=5))
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, 4)
    fake.push_message(1, "x")
    assert len(await asyncio.wait_for(second, 4)) == 1


async def test_callback_queries_reach_the_bot_and_can_be_answered_once(bot, fake):
    sent = await bot.send_message(42, "Choisir", reply_markup=keyboard("sub:1"))
    fake.push_callback(42, "sub:1", message_id=sent.message_id)
    (update,) = await bot.get_updates(timeout=0)
    query = update.callback_query
    assert query.data == "sub:1" and query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="C'est noté")
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(query.id)
    assert fake.callback_answers[0]["text"] == "C'est noté"


async def test_edits_replace_text_and_unchanged_edits_are_refused(bot, fake):
    sent = await bot.send_message(42, "v1", reply_markup=keyboard("a"))
    edited = await bot.edit_message_text("v2", chat_id=42, message_id=sent.message_id, reply_markup=keyboard("a"))
    assert edited.text == "v2" and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text("v2", chat_id=42, message_id=sent.message_id, reply_markup=keyboard("a"))
    await bot.edit_message_reply_markup(chat_id=42, message_id=sent.message_id, reply_markup=keyboard("b"))
    assert fake.message(42, sent.message_id)["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "b"
    assert [e.method for e in fake.edits(42)] == ["editMessageText", "editMessageReplyMarkup"]
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=42, message_id=99)
    assert await bot.delete_message(42, sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(42, sent.message_id)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a" * 4097, "message is too long"),
        ("<b>" + "é" * 4096 + "</b>", None),
        ("<b>" + "é" * 4097 + "</b>", "message is too long"),
        ("   ", "message text is empty"),
        ("<div>x</div>", 'can\'t parse entities: Unsupported start tag "div" at byte offset 0'),
        ("ligne<br>suivante", 'Unsupported start tag "br"'),
        ("<b>gras", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("Tom & Jerry", "Can't find end of the entity"),
        ("a < b", "Unclosed start tag"),
        ("&nbsp;", "Unsupported HTML entity"),
        ('<a href="https://www.eureporter.co/?a=1&amp;b=2">lien</a> &#171;cité&#x00BB; &quot;', None),
        ('<span class="tg-spoiler">x</span> <tg-spoiler>y</tg-spoiler> <blockquote expandable>z</blockquote>', None),
    ],
)
async def test_texts_are_checked_like_telegram_does(bot, text, error):
    if error is None:
        assert (await bot.send_message(42, text)).message_id == 1
    else:
        with pytest.raises(TelegramBadRequest, match=error.replace("(", r"\(")):
            await bot.send_message(42, text)


def test_html_check_returns_the_visible_text():
    assert check_telegram_html("<b>l&#39;OTAN</b> &lt;3 &amp; <i>d’Azerbaïdjan</i>") == "l'OTAN <3 & d’Azerbaïdjan"
    with pytest.raises(HtmlEntityError, match="byte offset 3"):
        check_telegram_html("é <p>")


async def test_html_validation_can_be_replaced_or_switched_off(bot, fake):
    fake.validate_html = None
    assert await bot.send_message(42, "<div>toléré</div>")

    def no_italics(text):
        if "<i>" in text:
            raise ValueError("no italics here")

    fake.validate_html = no_italics
    with pytest.raises(TelegramBadRequest, match="can't parse entities: no italics here"):
        await bot.send_message(42, "<i>x</i>")


async def test_too_long_callback_data_is_refused(bot):
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(42, "x", reply_markup=keyboard("x" * 65))


async def test_injected_server_errors_and_dropped_connections(bot, fake):
    fake.fail_next("sendMessage", status=500, count=2)
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(42, "x")
    fake.fail_next("sendMessage", status=502, html=True)
    with pytest.raises(ClientDecodeError):
        await bot.send_message(42, "x")
    fake.fail_next("sendMessage", status=0)
    with pytest.raises(TelegramNetworkError):
        await bot.send_message(42, "x")
    assert (await bot.send_message(42, "enfin")).message_id == 1
    assert [e.status for e in fake.errors] == [500, 500, 502, 0]


async def test_random_failures_are_seeded_and_roughly_at_the_rate(bot, fake):
    fake.random_failures(rate=0.2, seed=3)
    outcomes = []
    for i in range(100):
        try:
            await bot.send_message(42, f"n{i}")
            outcomes.append(True)
        except TelegramServerError:
            outcomes.append(False)
    failures = outcomes.count(False)
    assert 8 <= failures <= 35
    assert len(fake.sent(42)) == 100 - failures


async def test_limits_answer_429_with_retry_after_counted_on_the_server(bot, fake):
    fake.enforce_limits(global_per_second=5, private_per_second=1, private_burst=2, group_per_minute=20)
    await bot.send_message(42, "1")
    await bot.send_message(42, "2")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(42, "3")
    assert caught.value.retry_after == 1
    for chat_id in (1, 2, 3):
        await bot.send_message(chat_id, "x")  # chat 42's limit does not touch other chats
    with pytest.raises(TelegramRetryAfter, match="retry after 1"):
        await bot.send_message(4, "x")  # but five sends within a second fill the global window
    assert fake.too_many_requests == 2
    assert len(fake.sent()) == 5


async def test_group_limit_is_twenty_per_minute(bot, fake):
    fake.enforce_limits(global_per_second=1000, group_per_minute=20)
    for i in range(20):
        await bot.send_message(-1001, f"n{i}")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(-1001, "21st")
    assert 55 <= caught.value.retry_after <= 60
    assert fake.too_many_requests == 1


async def test_wait_for_messages_is_bounded_and_says_what_arrived(fake, bot):
    await bot.send_message(42, "seul")
    assert len(await fake.wait_for_messages(1, chat_id=42, timeout=1)) == 1
    with pytest.raises(TimeoutError, match="expected 2 messages to chat 42 within 0.2s, got 1"):
        await fake.wait_for_messages(2, chat_id=42, timeout=0.2)


async def test_commands_are_stored_per_scope_and_language(bot, fake):
    await bot.set_my_commands([BotCommand(command="start", description="Démarrer")])
    await bot.set_my_commands([BotCommand(command="aide", description="Aide")], language_code="fr")
    scope = BotCommandScopeChat(chat_id=42)
    await bot.set_my_commands([BotCommand(command="admin", description="Admin")], scope=scope)
    assert [c.command for c in await bot.get_my_commands()] == ["start"]
    assert [c.command for c in await bot.get_my_commands(language_code="fr")] == ["aide"]
    assert [c["command"] for c in fake.commands({"type": "chat", "chat_id": 42})] == ["admin"]
    await bot.delete_my_commands(language_code="fr")
    assert await bot.get_my_commands(language_code="fr") == []
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Start", description="x")])


async def test_documents_photos_and_files_round_trip(bot, fake):
    message = await bot.send_document(42, BufferedInputFile(b"csv,data\n", filename="export.csv"),
                                      caption="<b>Export</b>")
    assert message.document.file_name == "export.csv" and message.caption == "Export"
    assert fake.sent(42)[0].file == b"csv,data\n"
    file = await bot.get_file(message.document.file_id)
    downloaded = await bot.download_file(file.file_path)
    assert downloaded.read() == b"csv,data\n"
    photo = await bot.send_photo(42, BufferedInputFile(b"\x89PNG", filename="p.png"))
    assert photo.photo[0].width == 320
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_document(42, BufferedInputFile(b"x", filename="x"), caption="c" * 1025)


async def test_chat_queries(bot, fake):
    fake.add_chat(-100123, "channel", title="Veille Europe", username="veille_eu")
    chat = await bot.get_chat("@veille_eu")
    assert (chat.id, chat.type, chat.title) == (-100123, "channel", "Veille Europe")
    me = await bot.get_chat_member(-100123, fake.bot_id)
    assert me.status == "administrator"
    fake.set_member(-100123, 7, "creator")
    admins = await bot.get_chat_administrators(-100123)
    assert [a.status for a in admins] == ["creator"]
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.get_chat("@nobody")


async def test_strict_chats_answer_chat_not_found(bot, fake):
    fake.strict_chats = True
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(31337, "x")


async def test_my_chat_member_kicked_blocks_the_chat(bot, fake):
    fake.push_my_chat_member(42, new_status="kicked")
    (update,) = await bot.get_updates(timeout=0)
    assert update.my_chat_member.new_chat_member.status == "kicked"
    with pytest.raises(TelegramForbiddenError):
        await bot.send_message(42, "x")


async def test_webhook_blocks_polling_until_deleted(bot, fake):
    await bot.set_webhook("https://veille.example/hook")
    assert (await bot.get_webhook_info()).url == "https://veille.example/hook"
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates(timeout=0)
    await bot.delete_webhook(drop_pending_updates=True)
    assert await bot.get_updates(timeout=0) == []


async def test_wrong_token_and_unknown_method(fake):
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{fake.base_url}/bot{TOKEN}/sendPigeon", json={"chat_id": 1}) as resp:
            assert resp.status == 404
            assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with http.get(f"{fake.base_url}/bot{TOKEN}/SENDMESSAGE", params={"chat_id": 5, "text": "hé"}) as resp:
            assert (await resp.json())["result"]["text"] == "hé"
    wrong = Bot("999:nope", session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await wrong.get_me()
    finally:
        await close_quickly(wrong)
    assert TelegramNotFound


async def test_concurrent_sends_to_two_thousand_chats(bot, fake):
    # One send per chat keeps this file fast; the bench figure for 10,000 sends is in the report.
    async def send(chat_base: int) -> None:
        for n in range(100):
            await bot.send_message(chat_base * 1000 + n + 1, f"alerte {n}")

    await asyncio.gather(*(send(c) for c in range(1, 21)))
    await bot.send_message(1001, "deuxième")
    await fake.wait_for_messages(2001, timeout=5)
    assert len({m.chat_id for m in fake.sent()}) == 2000
    assert [m.message_id for m in fake.sent(1001)] == [1, 2]
    assert not fake.errors


async def test_aiogram_polling_loop_receives_updates_and_replies(bot, fake):
    from aiogram import Dispatcher, F
    from aiogram.filters import CommandStart
    from aiogram.types import Message

    dp = Dispatcher()

    @dp.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer(f"Bonjour {message.from_user.username}")

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"Reçu : {message.text}")

    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, polling_timeout=1))
    try:
        fake.push_message(42, "/start", username="marie")
        fake.push_message(42, "OTAN")
        replies = await fake.wait_for_messages(2, chat_id=42, timeout=5)
        assert [m.text for m in replies] == ["Bonjour marie", "Reçu : OTAN"]
        fake.push_message(43, "encore")
        assert (await fake.wait_for_messages(1, chat_id=43, timeout=5))[0].text == "Reçu : encore"
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 5)
    assert fake.pending_updates <= 1  # the last batch is confirmed by the next poll, which may not come


async def test_a_client_paced_by_the_rate_limiter_never_gets_429(bot, fake):
    import time

    from bot.core.ratelimit import ChatPacer, PacingSettings, RateLimiter

    # Ten times Telegram's rates so the test is quick; the server and the client use the same figures.
    fake.enforce_limits(global_per_second=300, private_per_second=10, private_burst=3, group_per_minute=600)
    limiter = RateLimiter(global_per_second=300, pacer=ChatPacer(PacingSettings(
        private_per_second=10, private_burst=3, group_per_minute=600)))
    chats = [(1, "private"), (2, "private"), (-1001, "supergroup"), (-1002, "supergroup")]
    for chat_id, kind in chats:
        fake.add_chat(chat_id, kind)
    for _ in range(12):
        for chat_id, kind in chats:
            for _attempt in range(100):
                wait = limiter.reserve(chat_id, kind, time.monotonic())
                if wait == 0.0:
                    break
                await asyncio.sleep(wait)
            await bot.send_message(chat_id, "alerte")
    assert fake.too_many_requests == 0
    assert len(fake.sent()) == 48


async def test_an_unpaced_client_does_get_429(bot, fake):
    fake.enforce_limits(global_per_second=300, private_per_second=10, private_burst=3, group_per_minute=600)
    for _ in range(4):
        try:
            await bot.send_message(1, "alerte")
        except TelegramRetryAfter:
            pass
    assert fake.too_many_requests == 1


async def test_updates_are_pushed_to_a_webhook_and_replies_are_executed(bot, fake):
    from aiohttp import web

    received, attempts = [], []

    async def hook(request: web.Request) -> web.Response:
        attempts.append(request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
        if len(attempts) == 1:
            return web.Response(status=500)  # the first delivery fails and must be retried
        update = await request.json()
        received.append(update["update_id"])
        return web.json_response({"method": "sendMessage", "chat_id": 42, "text": f"vu {update['update_id']}"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        first = fake.push_message(42, "un")
        second = fake.push_message(42, "deux")
        await bot.set_webhook(f"http://127.0.0.1:{runner.addresses[0][1]}/hook", secret_token="s3cret")
        replies = await fake.wait_for_messages(2, chat_id=42, timeout=5)
        assert received == [first["update_id"], second["update_id"]]
        assert [m.visible_text for m in replies] == [f"vu {first['update_id']}", f"vu {second['update_id']}"]
        assert attempts == ["s3cret"] * 3 and fake.webhook_failures == 1
        assert fake.pending_updates == 0
    finally:
        await bot.delete_webhook()
        await runner.cleanup()


def test_visible_text_strips_html():
    from tests.fakes.telegram_api import SentMessage

    message = SentMessage("sendMessage", 1, "<b>l&#x27;OTAN</b> &amp; co", "HTML", None, 1, 0.0, {})
    assert message.visible_text == "l'OTAN & co"


async def test_group_messages_infer_the_chat_type_and_carry_threads(bot, fake):
    fake.push_message(-1001234567890, "/start@veille_test_bot", user_id=7, username="paul", message_thread_id=5)
    fake.push_message(-4242, "salut", user_id=8)
    first, second = await bot.get_updates(timeout=0)
    assert first.message.chat.type == "supergroup" and first.message.chat.is_forum
    assert first.message.message_thread_id == 5 and first.message.from_user.id == 7
    assert first.message.entities[0].length == len("/start@veille_test_bot")
    assert second.message.chat.type == "group" and second.message.from_user.id == 8
