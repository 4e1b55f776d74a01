"""Digests: many held alerts as few Telegram messages — grouped by alert, best first, deduplicated.

Rules (issue #7):
- One entry per story: an article whose story (or, without a story, whose article) already appears
  is left out, wherever it came from; the entry kept is the one under the best-ranked alert.
- Ranking, best first: more outlets carrying the story, then newer, then the lower article id (so the
  order is total and the same on every run). Alerts are ordered by their best entry.
- An entry is one line: the linked title, then "— Source", then "(+N)" when N other outlets carry it.
  Titles are cleaned and capped as in `bot.core.render`; only http(s) links are linked.
- Entries are packed in order into messages whose visible text fits 4096 UTF-16 units; an alert's
  heading is repeated (with "…") on a message that continues it. At most `max_messages` messages go
  at once: what does not fit is kept as further parts, and the last message sent says how many more
  entries there are (`Digest.more`); the caller attaches a "more" button that releases the next parts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.render import TELEGRAM_MAX_LENGTH, escape, utf16_length

_MAX_TITLE_UNITS = 200
_MAX_NAME_UNITS = 80


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One held alert: an article matched by one alert."""

    alert_id: int
    alert_name: str
    article_id: int
    title: str
    url: str
    source_name: str
    published: datetime | None = None
    story_id: int | None = None
    outlets: int = 1  # sources carrying the story
    row_id: int = 0  # the outbox row, for the caller's bookkeeping


@dataclass(frozen=True, slots=True)
class DigestLabels:
    """Translated texts, filled by the caller; `{count}` is the number of entries."""

    header: str = "📬 <b>Digest</b> — {count} articles"
    header_one: str = "📬 <b>Digest</b> — 1 article"
    continued: str = "…"
    more: str = "➕ {count} more"


@dataclass(frozen=True, slots=True)
class DigestPart:
    html: str
    entries: int
    more: int = 0  # > 0: this part ends a batch and `more` entries wait behind a "more" button


@dataclass(frozen=True, slots=True)
class Digest:
    parts: tuple[DigestPart, ...]  # every message, in order; batches of `max_messages`
    kept: tuple[DigestItem, ...] = ()  # the entries shown (after dedup), in order
    dropped: tuple[DigestItem, ...] = ()  # duplicates left out
    batch: int = 3  # parts released at once (the first batch at once, later ones on "more")


def rank(items: Sequence[DigestItem]) -> list[DigestItem]:
    newest_first = sorted(items, key=lambda i: (i.published.timestamp() if i.published else 0.0), reverse=True)
    return sorted(newest_first, key=lambda i: -i.outlets)


def _story_key(item: DigestItem) -> tuple[str, int]:
    return ("story", item.story_id) if item.story_id is not None else ("article", item.article_id)


def select_entries(items: Sequence[DigestItem]) -> tuple[list[tuple[DigestItem, list[DigestItem]]], list[DigestItem]]:
    """Groups by alert (best alert first), ranks and deduplicates; returns the groups and the duplicates."""
    by_alert: dict[int, list[DigestItem]] = {}
    for item in sorted(items, key=lambda i: i.article_id):
        by_alert.setdefault(item.alert_id, []).append(item)
    ranked = {alert: rank(group) for alert, group in by_alert.items()}
    alert_order = sorted(ranked, key=lambda a: (_rank_key(ranked[a][0]), a))
    seen: set[tuple[str, int]] = set()
    groups: list[tuple[DigestItem, list[DigestItem]]] = []
    dropped: list[DigestItem] = []
    for alert in alert_order:
        kept = []
        for item in ranked[alert]:
            key = _story_key(item)
            if key in seen:
                dropped.append(item)
                continue
            seen.add(key)
            kept.append(item)
        if kept:
            groups.append((kept[0], kept))
    return groups, dropped


def _rank_key(item: DigestItem) -> tuple[float, float, int]:
    return (-item.outlets, -(item.published.timestamp() if item.published else 0.0), item.article_id)


def _clean(text: str, cap: int) -> str:
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    text = "".join(c for c in text if not ("\u202a" <= c <= "\u202e" or "\u2066" <= c <= "\u2069"))
    if utf16_length(text) > cap:
        while utf16_length(text) > cap - 1:
            text = text[:-1]
        text = text.rstrip() + "…"
    return text


def _entry(item: DigestItem) -> tuple[str, int]:
    title = _clean(item.title, _MAX_TITLE_UNITS) or "—"
    source = _clean(item.source_name, _MAX_NAME_UNITS)
    linked = (
        f'<a href="{escape(item.url)}">{escape(title)}</a>'
        if item.url.lower().startswith(("http://", "https://"))
        else escape(title)
    )
    plain = f"• {title}"
    html = f"• {linked}"
    if source:
        plain += f" — {source}"
        html += f" — {escape(source)}"
    if item.outlets > 1:
        plain += f" (+{item.outlets - 1})"
        html += f" (+{item.outlets - 1})"
    return html, utf16_length(plain)


def _heading(name: str, continued: str = "") -> tuple[str, int]:
    cleaned = _clean(name, _MAX_NAME_UNITS)
    plain = f"🔔 {cleaned}{continued}"
    return f"🔔 <b>{escape(cleaned)}</b>{escape(continued)}", utf16_length(plain)


def _visible_units(html_label: str) -> int:
    plain = re.sub(r"<[^>]+>", "", html_label)
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&amp;", "&")):
        plain = plain.replace(entity, char)
    return utf16_length(plain)


def compose_digest(
    items: Sequence[DigestItem],
    labels: DigestLabels = DigestLabels(),
    *,
    max_messages: int = 3,
    max_length: int = TELEGRAM_MAX_LENGTH,
) -> Digest:
    """The digest of `items` (see the module rules); empty `items` give no parts."""
    if max_messages < 1:
        raise ValueError(f"max_messages must be at least 1, got {max_messages}")
    groups, dropped = select_entries(items)
    kept = [item for _, group in groups for item in group]
    if not kept:
        return Digest(parts=(), dropped=tuple(dropped))
    header = labels.header_one if len(kept) == 1 else labels.header.format(count=len(kept))
    # Room for the "more" line on any part that may end a batch: reserve it everywhere (it is short).
    reserve = 2 + _visible_units(labels.more.format(count=10**6))
    budget = max_length - reserve
    parts: list[tuple[list[str], int, int]] = []  # lines, units, entries
    lines: list[str] = [header]
    units = _visible_units(header)
    entries = 0

    def add(line: str, line_units: int) -> bool:
        nonlocal units
        extra = line_units + 1  # the newline before it
        if units + extra > budget:
            return False
        lines.append(line)
        units += extra
        return True

    for _, group in groups:
        name = group[0].alert_name
        heading, heading_units = _heading(name)
        if lines and not add("", 0) or not add(heading, heading_units):
            parts.append((lines, units, entries))
            lines, units, entries = [heading], heading_units, 0
        for item in group:
            entry, entry_units = _entry(item)
            if add(entry, entry_units):
                entries += 1
                continue
            parts.append((lines, units, entries))
            cont, cont_units = _heading(name, f" {labels.continued}")
            lines, units, entries = [cont], cont_units, 0
            if not add(entry, entry_units):  # cannot happen with capped titles; never loop on it
                raise ValueError("a digest entry does not fit in an empty message")
            entries += 1
    parts.append((lines, units, entries))
    parts = [p for p in parts if p[2] > 0]
    out: list[DigestPart] = []
    remaining = len(kept)
    for index, (part_lines, _, count) in enumerate(parts):
        remaining -= count
        html = "\n".join(part_lines).strip("\n")
        ends_batch = (index + 1) % max_messages == 0 and remaining > 0
        if ends_batch:
            html += "\n\n" + labels.more.format(count=remaining)
        out.append(DigestPart(html, count, remaining if ends_batch else 0))
    return Digest(parts=tuple(out), kept=tuple(kept), dropped=tuple(dropped), batch=max_messages)

