"""One router per feature, assembled here."""

from aiogram import Router

from bot.telegram.routers import (
    admin,
    alert_buttons,
    alerts,
    channels,
    chat_settings,
    common,
    delivery_buttons,
    io,
    sources,
)


def get_routers() -> list[Router]:
    return [
        channels.make_router(),  # first: migrations and memberships are facts, whatever else is going on
        admin.make_router(),  # before the chat routers: an admin's draft in progress is not a query
        common.make_router(),
        alerts.make_router(),
        chat_settings.make_router(),
        sources.make_router(),
        io.make_router(),
        alert_buttons.make_router(),
        delivery_buttons.make_router(),  # noise-guard undo, digest "more" (issue #7)
    ]
