"""The alert message's inline keyboard: typed callback data and the buttons built from a keyboard state.

Layout:
- a message for one alert: "🔕 Mute 24 h" and "🚫 Stop this source" on one row, "✖ Unsubscribe" below;
  a pressed button turns into its confirmation ("✅ Muted until 14:05") beside "↩ Undo";
- a message coalescing several alerts: one "✖ Unsubscribe: <alert>" row per alert.
Callback data stays far below Telegram's 64 bytes: "ab:mute:<alert id>:<source id>".
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.i18n import Gettext, translator
from bot.services.alert_views import AlertActions, AlertButtonState, AlertKeyboardState

MAX_LABEL = 40  # characters of an alert's name on a button


class AlertButton(CallbackData, prefix="ab"):
    """action: mute | unmute | stop (the message's source) | restore (source `src`) | unsub | noop."""

    action: str
    sub: int
    src: int = 0


def alert_keyboard(state: AlertKeyboardState) -> InlineKeyboardMarkup | None:
    """The buttons under an alert message, in the chat's language; None when there is nothing to show."""
    _ = translator(state.language)
    if not state.alerts:
        return None
    if len(state.alerts) == 1:
        rows = _single_alert_rows(state.alerts[0], state.timezone, _)
    else:
        rows = [[_several_alerts_button(alert, _)] for alert in state.alerts]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def _single_alert_rows(
    alert: AlertButtonState, timezone: str, _: Gettext
) -> list[list[InlineKeyboardButton]]:
    sub = alert.subscription_id
    if not alert.exists:
        return [[_button(_("🗑 Alert deleted"), AlertButton(action="noop", sub=sub))]]
    mute = [_button(_("🔕 Mute 24 h"), AlertButton(action="mute", sub=sub))]
    if alert.muted_until is not None:  # the pressed button becomes its confirmation, beside "Undo"
        mute = [
            _button(_("✅ Muted until {time}", time=_local_time(alert.muted_until, timezone)),
                    AlertButton(action="noop", sub=sub)),
            _button(_("↩ Undo"), AlertButton(action="unmute", sub=sub)),
        ]
    stop = [_button(_("🚫 Stop this source"), AlertButton(action="stop", sub=sub))]
    if alert.stopped_source is not None:
        source_id, name = alert.stopped_source
        stop = [
            _button(_("✅ {source} stopped", source=_short(name)), AlertButton(action="noop", sub=sub)),
            _button(_("↩ Undo"), AlertButton(action="restore", sub=sub, src=source_id)),
        ]
    rows = [mute + stop] if len(mute) == len(stop) == 1 else [mute, stop]
    rows.append([_button(_("✖ Unsubscribe"), AlertButton(action="unsub", sub=sub))])
    return rows


def _several_alerts_button(alert: AlertButtonState, _: Gettext) -> InlineKeyboardButton:
    label = _short(alert.label)
    if not alert.exists:
        return _button(_("🗑 {alert} deleted", alert=label), AlertButton(action="noop", sub=alert.subscription_id))
    return _button(_("✖ Unsubscribe: {alert}", alert=label), AlertButton(action="unsub", sub=alert.subscription_id))


def _button(text: str, data: AlertButton) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1].rstrip() + "…"


def _local_time(moment: datetime, timezone: str) -> str:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return f"{moment:%H:%M} UTC"
    return f"{moment.astimezone(zone):%H:%M}"


class AlertKeyboards:
    """What `TelegramSender` asks for the buttons of an alert message (before it is sent, or when it
    is edited: then its alerts and source are read from the outbox by its message id)."""

    def __init__(self, actions: AlertActions) -> None:
        self.actions = actions

    async def markup(
        self, chat_id: int, subscription_ids: Sequence[int], message_id: int | None = None
    ) -> InlineKeyboardMarkup | None:
        if not subscription_ids and message_id is None:
            return None
        state = await self.actions.keyboard_state(chat_id, subscription_ids, message_id)
        return alert_keyboard(state) if state is not None else None


def alert_keyboards(core: Any) -> AlertKeyboards:
    """The keyboards of an app's alert messages (`core`: `bot.app.Core`, not imported to avoid a cycle)."""
    return AlertKeyboards(AlertActions(core.session_factory, core.matcher, clock=core.clock))
