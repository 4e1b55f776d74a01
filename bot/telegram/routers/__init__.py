"""One router per feature, assembled here."""

from aiogram import Router

from bot.telegram.routers import alerts, common


def get_routers() -> list[Router]:
    return [common.make_router(), alerts.make_router()]
