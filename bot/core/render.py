"""Alert messages in Telegram HTML (parse_mode HTML), read on a phone in two seconds.

Layout of one alert (lines without content are left out):

    <b><a href="URL">Title</a></b>
    Source · 15 déc. 2021, 18:05        (publication time in the chat's timezone)
    🔔 Alert name                       (only when the caller names the alert: chats with several)

    Summary

    🔎 OTAN, Azerbaïdjan                (the terms that fired)
    📰 Aussi dans : Le Monde, Euractiv  (other outlets carrying the same story)

Rules:
- Every piece of outside text is escaped (& < > ") and cleaned first: control characters and Unicode
  bidi overrides/isolates (U+202A–U+202E, U+2066–U+2069) are removed, because an RTL override in a
  hostile title would reverse the rest of its line, and whitespace is collapsed (a title is one line).
- The title links to the article only for http(s) URLs: Telegram refuses a message whose link has
  another scheme, and a javascript: link must never reach a chat. A missing title reads "(sans titre)".
- Telegram counts a message's length after parsing, in UTF-16 code units (an emoji outside the BMP
  counts 2), at most 4096 (https://core.telegram.org/bots/api#sendmessage). The URL of a link does
  not count. When the message is too long, the summary shrinks first (whole sentences, then words,
  ending with "…"), then goes; then the "also in" line, the terms, the alert name, the source, and
  the title's text last. The link itself is never cut. Before that, absurd lengths are capped: a title
  at 300 units, a name at 80, the terms and "also in" lines at 300.
- Cutting happens on plain text before escaping, so an entity or a tag is never broken.
- Labels follow the chat's language: French, else English.
- Several alerts for one chat are coalesced (`render_alerts_bundle`) into as few messages as fit,
  separated by a blank line, in the order given; such messages disable the link preview, which would
  only show the first link.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.sentences import split_sentences

__all__ = [
    "TELEGRAM_MAX_LENGTH",
    "AlertView",
    "RenderedMessage",
    "escape",
    "render_alert",
    "render_alerts_bundle",
    "utf16_length",
]

TELEGRAM_MAX_LENGTH = 4096
_ELLIPSIS = "…"
_ALERT_SEPARATOR = "\n\n"
# A summary cut shorter than this says nothing useful: drop it instead.
_MIN_SUMMARY_UNITS = 40
# Caps applied before fitting, so that a garbage 5,000-character title or source name cannot push
# the summary and the terms out of the message: real titles are far shorter.
_MAX_TITLE_UNITS = 300
_MAX_NAME_UNITS = 80
_MAX_TERMS_UNITS = 300

_LABELS: dict[str, dict[str, str]] = {
    "fr": {"untitled": "(sans titre)", "also_in": "Aussi dans\u00a0:"},
    "en": {"untitled": "(untitled)", "also_in": "Also in:"},
}
_MONTHS: dict[str, tuple[str, ...]] = {
    "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
}
_ICON_ALERT = "🔔"
_ICON_TERMS = "🔎"
_ICON_ALSO_IN = "📰"

# C0/C1 controls, newlines included (every field is one line): they become spaces.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Bidi embeddings, overrides and isolates, and the BOM: removed.
_BIDI_CONTROLS = re.compile(r"[\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class AlertView:
    """What one alert shows; the caller fills it from the article, the source and the chat."""

    title: str
    url: str
    source_name: str
    published: datetime | None
    timezone: str  # IANA name of the chat's timezone, e.g. "Europe/Paris"
    summary: str
    matched_terms: Sequence[str]
    alert_name: str | None = None  # set only when the chat has several alerts
    also_in: Sequence[str] = ()  # other sources carrying the same story
    language: str = "fr"  # the chat's language, for labels and dates


@dataclass(frozen=True)
class RenderedMessage:
    text: str  # Telegram HTML, for parse_mode="HTML"
    disable_link_preview: bool = False


def escape(text: str) -> str:
    """Telegram-HTML escape: & < > and " (the last for attribute values)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def utf16_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def render_alert(view: AlertView, *, max_length: int = TELEGRAM_MAX_LENGTH) -> RenderedMessage:
    """One alert as a Telegram HTML message whose visible text fits `max_length` UTF-16 units."""
    return RenderedMessage(text=_render(view, max_length).html, disable_link_preview=False)


def render_alerts_bundle(
    views: Sequence[AlertView], *, max_length: int = TELEGRAM_MAX_LENGTH
) -> list[RenderedMessage]:
    """Several alerts for one chat, packed in order into as few messages as fit `max_length`."""
    return [message for _, message in pack_alerts(views, max_length=max_length)]


def pack_alerts(
    views: Sequence[AlertView], *, max_length: int = TELEGRAM_MAX_LENGTH
) -> list[tuple[int, RenderedMessage]]:
    """Like `render_alerts_bundle`, with how many of `views` (in order) each message holds."""
    if len(views) == 1:
        return [(1, render_alert(views[0], max_length=max_length))]
    groups: list[list[_Rendered]] = []
    used = 0
    separator = utf16_length(_ALERT_SEPARATOR)
    for view in views:
        rendered = _render(view, max_length)
        if groups and used + separator + rendered.units <= max_length:
            groups[-1].append(rendered)
            used += separator + rendered.units
        else:
            groups.append([rendered])
            used = rendered.units
    return [
        (
            len(group),
            RenderedMessage(
                text=_ALERT_SEPARATOR.join(part.html for part in group), disable_link_preview=len(group) > 1
            ),
        )
        for group in groups
    ]


@dataclass(frozen=True, slots=True)
class _Rendered:
    html: str
    units: int  # visible length in UTF-16 units


@dataclass(slots=True)
class _Fields:
    """Plain (unescaped) text of each part; the visible length is computed from these."""

    title: str
    meta: str
    alert: str
    summary: str
    terms: str
    also_in: str

    def blocks(self) -> list[str]:
        header = "\n".join(line for line in (self.title, self.meta, self.alert) if line)
        footer = "\n".join(line for line in (self.terms, self.also_in) if line)
        return [block for block in (header, self.summary, footer) if block]

    def units(self) -> int:
        return utf16_length("\n\n".join(self.blocks()))


def _render(view: AlertView, max_length: int) -> _Rendered:
    labels = _LABELS.get(view.language, _LABELS["en"])
    title = _truncate_units(_clean(view.title), _MAX_TITLE_UNITS) or labels["untitled"]
    source = _truncate_units(_clean(view.source_name), _MAX_NAME_UNITS)
    alert_name = _truncate_units(_clean(view.alert_name), _MAX_NAME_UNITS)
    when = _format_time(view.published, view.timezone, view.language)
    terms = _unique(_clean(term) for term in view.matched_terms)
    also_in = [
        name
        for name in _unique(_truncate_units(_clean(name), _MAX_NAME_UNITS) for name in view.also_in)
        if name.casefold() != source.casefold()
    ]
    fields = _Fields(
        title=title,
        meta=" · ".join(part for part in (source, when) if part),
        alert=f"{_ICON_ALERT} {alert_name}" if alert_name else "",
        summary=_clean(view.summary),
        terms=_truncate_units(f"{_ICON_TERMS} {', '.join(terms)}", _MAX_TERMS_UNITS) if terms else "",
        also_in=_truncate_units(f"{_ICON_ALSO_IN} {labels['also_in']} {', '.join(also_in)}", _MAX_TERMS_UNITS)
        if also_in
        else "",
    )
    _fit(fields, max_length)
    return _Rendered(html=_to_html(fields, view.url, source), units=fields.units())


def _fit(fields: _Fields, max_length: int) -> None:
    """Shrink fields in the documented order until the visible text fits."""
    excess = fields.units() - max_length
    if excess <= 0:
        return
    if fields.summary:
        room = utf16_length(fields.summary) - excess
        fields.summary = _shrink_summary(fields.summary, room) if room >= _MIN_SUMMARY_UNITS else ""
    # Then each remaining field in turn; the title (the link's text) is the last resort.
    for name in ("also_in", "terms", "alert", "meta", "title"):
        excess = fields.units() - max_length
        if excess <= 0:
            return
        value = getattr(fields, name)
        room = utf16_length(value) - excess
        # A field must keep at least a character and the ellipsis to stay meaningful; the title never
        # disappears (the message would be empty), the others do.
        shrunk = _truncate_units(value, room) if room >= 2 else ""
        setattr(fields, name, shrunk or (value[:1] + _ELLIPSIS if name == "title" else ""))


def _shrink_summary(summary: str, room: int) -> str:
    """The whole sentences of the summary that fit in `room` units, else its first words with "…"."""
    kept = ""
    for sentence in split_sentences(summary):
        candidate = f"{kept} {sentence}" if kept else sentence
        if utf16_length(candidate) > room:
            break
        kept = candidate
    return kept or _truncate_units(summary, room)


def _truncate_units(text: str, room: int) -> str:
    """`text` if it fits in `room` UTF-16 units, else a word-boundary prefix ending with "…"."""
    if utf16_length(text) <= room:
        return text
    if room < 2:
        return ""
    budget = room - utf16_length(_ELLIPSIS)
    end = 0
    used = 0
    for index, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > budget:
            break
        end = index + 1
    head = text[:end]
    boundary = head.rfind(" ")
    # Back off to a word boundary unless that would throw away most of the room (one huge word).
    if boundary > len(head) // 2:
        head = head[:boundary]
    # Never end inside a grapheme: a joiner or a combining mark belongs to what follows or precedes.
    while head and (
        head[-1] in "\u200d\ufe0f" or _is_combining(head[-1]) or 0xD800 <= ord(head[-1]) <= 0xDFFF
    ):
        head = head[:-1]
    head = head.rstrip(" ,;:–—-([«\"'“")
    return head + _ELLIPSIS if head else ""


def _to_html(fields: _Fields, url: str, source: str) -> str:
    link = _safe_url(url)
    title = escape(fields.title)
    title_html = f'<b><a href="{escape(link)}">{title}</a></b>' if link else f"<b>{title}</b>"
    meta = escape(fields.meta)
    if source and fields.meta.startswith(source):
        meta = f"<i>{escape(source)}</i>{escape(fields.meta[len(source) :])}"
    header = "\n".join(line for line in (title_html, meta, escape(fields.alert)) if line)
    footer = "\n".join(escape(line) for line in (fields.terms, fields.also_in) if line)
    return "\n\n".join(block for block in (header, escape(fields.summary), footer) if block)


def _safe_url(url: str) -> str | None:
    url = _BIDI_CONTROLS.sub("", _CONTROL_CHARS.sub("", url)).strip()
    if not re.match(r"https?://[^\s/?#]+", url, re.IGNORECASE):
        return None
    # Percent-encode what may not appear raw in a URL (spaces, quotes, <>, non-ASCII), leaving
    # existing escapes and reserved characters alone (RFC 3986, section 2).
    return quote(url, safe="!#$%&'()*+,/:;=?@[]~")


def _format_time(published: datetime | None, timezone: str, language: str) -> str:
    if published is None:
        return ""
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    suffix = ""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        # A bad stored timezone must not stop delivery: show UTC and say so.
        zone, suffix = ZoneInfo("UTC"), " UTC"
    local = published.astimezone(zone)
    months = _MONTHS.get(language, _MONTHS["en"])
    return f"{local.day} {months[local.month - 1]} {local.year}, {local:%H:%M}{suffix}"


def _clean(text: str | None) -> str:
    if not text:
        return ""
    return _SPACES.sub(" ", _CONTROL_CHARS.sub(" ", _BIDI_CONTROLS.sub("", text))).strip()


def _unique(items: Iterable[str]) -> list[str]:
    """Non-empty items, first spelling kept, without case-insensitive repeats."""
    seen: set[str] = set()
    kept: list[str] = []
    for item in items:
        if item and item.casefold() not in seen:
            seen.add(item.casefold())
            kept.append(item)
    return kept


def _is_combining(char: str) -> bool:
    return unicodedata.combining(char) != 0
