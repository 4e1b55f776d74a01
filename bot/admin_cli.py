"""The admin commands of the `veille` CLI (issue #8): `broadcast`, `stats`, `sources health`.

They work on the database alone: `veille broadcast` writes the broadcast and its outbox rows (or only
counts them with --dry-run), and the running bot — or the next `veille run` — delivers them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime
from pathlib import Path

from bot.settings import Settings


def add_commands(commands: argparse._SubParsersAction, sources: argparse._SubParsersAction) -> None:
    """Adds `broadcast` and `stats` to the top-level commands, `health` to `sources`."""
    broadcast = commands.add_parser("broadcast", help="send a message to many chats through the outbox")
    broadcast.add_argument("--text", required=True, help="the message, in Telegram HTML (<b>, <i>, <a href>…)")
    broadcast.add_argument("--audience", default="everyone",
                           help="everyone (default), lang:fr, term:OTAN, groups, or chat:ID")
    broadcast.add_argument("--button", action="append", default=[], metavar='"LABEL - URL"',
                           help="a link button under the message (repeatable, one row each)")
    broadcast.add_argument("--dry-run", action="store_true", help="only count the chats it would go to")
    stats = commands.add_parser("stats", help="users, chats, alerts, sources, articles and alerts today")
    stats.add_argument("--chart", type=Path, metavar="FILE.png", help="also draw the 30-day chart into this file")
    sources.add_parser("health", help="per source: last success, errors, interval, 304 ratio, next check")


def broadcast(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_with_core(settings, _broadcast, args))


def stats(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_with_core(settings, _stats, args))


def sources_health(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_with_core(settings, _sources_health, args))


async def _with_core(settings: Settings, action, args: argparse.Namespace) -> int:  # noqa: ANN001
    from bot.app import Core
    from bot.services.admin import AdminServices

    core = Core.build(settings)
    try:
        await core.prepare(load_sources=False)
        services = AdminServices.build(settings, core.session_factory, clock=core.clock)
        return await action(services, args)
    finally:
        await core.close()


async def _broadcast(services, args: argparse.Namespace) -> int:  # noqa: ANN001
    from bot.services.broadcasts import Audience, BroadcastError, check_html, parse_buttons

    try:
        audience = Audience.parse(args.audience)
        buttons = parse_buttons("\n".join(args.button)) if args.button else None
        check_html(args.text)
    except BroadcastError as exc:
        print(f"veille broadcast: {exc}", file=sys.stderr)
        return 2
    if args.dry_run:
        count = await services.broadcasts.count_audience(audience)
        print(f"dry run: would send to {count} chats (audience {audience.label()}); nothing queued")
        return 0
    try:
        broadcast_id, queued = await services.broadcasts.send_now(0, args.text, audience, buttons=buttons)
    except BroadcastError as exc:
        print(f"veille broadcast: {exc}", file=sys.stderr)
        return 2
    print(f"broadcast #{broadcast_id}: {queued} chats queued (audience {audience.label()}); "
          "the running bot delivers them")
    return 0


async def _stats(services, args: argparse.Namespace) -> int:  # noqa: ANN001
    s = await services.stats.snapshot()
    chats = ", ".join(f"{kind} {active}" + (f" (+{inactive} inactive)" if inactive else "")
                      for kind, (active, inactive) in s.chats.items()) or "none"
    print(f"users: {s.users.total} (active {s.users.active}, blocked {s.users.blocked}, banned {s.users.banned})")
    print(f"chats: {chats}")
    print(f"alerts: {s.alerts} ({s.alerts_paused} paused)")
    print(f"sources: {s.sources['ok']} ok, {s.sources['failing']} failing, {s.sources['disabled']} disabled")
    print(f"today (UTC): {s.articles_today} articles, {s.alerts_today} alerts sent")
    if s.top_terms:
        print("top alerts: " + ", ".join(f"{term} ({n})" for term, n in s.top_terms))
    if args.chart:
        args.chart.write_bytes(await services.stats.chart_png(s))
        print(f"chart written to {args.chart}")
    return 0


def _when(value: datetime | None, now: datetime) -> str:
    if value is None:
        return "-"
    seconds = int((value - now).total_seconds())
    return f"in {seconds}s" if seconds >= 0 else f"{-seconds}s ago"


async def _sources_health(services, args: argparse.Namespace) -> int:  # noqa: ANN001
    health = await services.stats.sources_health()
    now = services.stats.clock()
    if not health:
        print("no sources; add one with: veille sources add URL")
        return 0
    print(f"{'id':>4}  {'state':8}  {'last ok':>12}  {'errors':>6}  {'interval':>8}  {'304':>5}  {'next':>10}  name")
    for h in health:
        ratio = f"{h.not_modified_ratio:.0%}" if h.not_modified_ratio is not None else "-"
        interval = f"{h.interval_seconds:.0f}s" if h.interval_seconds else "-"
        print(f"{h.id:>4}  {h.state:8}  {_when(h.last_success_at, now):>12}  {h.error_streak:>6}  {interval:>8}  "
              f"{ratio:>5}  {_when(h.next_check_at, now):>10}  {h.name}")
        if h.last_error and h.error_streak:
            print(f"        last error: {h.last_error[:160]}")
        if h.state == "disabled" and h.disabled_reason:
            print(f"        disabled: {h.disabled_reason}")
    return 0
