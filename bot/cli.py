"""`veille` — the command line. `python -m bot` is the same program.

Every command reads the settings (environment, `.env`, `config/veille.toml`); a wrong setting prints
one line naming it and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

from bot import admin_cli
from bot.errors import ConfigError, VeilleError
from bot.logs import setup_logging
from bot.settings import Settings, load_settings

EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="veille",
        description="Veille — news alerts for Telegram. Watches news feeds and sends each chat the new "
        "articles that match its alerts.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser("run", help="start the bot: migrations, sources, Telegram, scheduler, delivery")
    run.add_argument("--role", default="all", metavar="ROLE",
                     help="what this process does when several run together: all (default), bot, poller, "
                     "sender, or several joined by commas (poller,sender)")

    db = commands.add_parser("db", help="database schema (Alembic)")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION")
    db_commands.required = True
    up = db_commands.add_parser("upgrade", help="upgrade the schema (default: to the latest)")
    up.add_argument("revision", nargs="?", default="head")
    down = db_commands.add_parser("downgrade", help="downgrade the schema (default: one step)")
    down.add_argument("revision", nargs="?", default="-1")
    db_commands.add_parser("current", help="show the schema revision")

    sources = commands.add_parser("sources", help="the news sources Veille polls")
    src = sources.add_subparsers(dest="sources_command", metavar="ACTION")
    src.required = True
    src.add_parser("list", help="list sources with their state")
    add = src.add_parser("add", help="add a feed by URL")
    add.add_argument("url")
    add.add_argument("--name", help="display name (default: the feed's title)")
    add.add_argument("--language", help="language code, e.g. fr")
    add.add_argument("--category")
    remove = src.add_parser("remove", help="remove a source (by id or URL) and its articles")
    remove.add_argument("source")
    enable = src.add_parser("enable", help="re-enable a disabled source")
    enable.add_argument("source")
    disable = src.add_parser("disable", help="stop polling a source")
    disable.add_argument("source")
    opml_import = src.add_parser("import", help="add the feeds of an OPML file (names and categories kept)")
    opml_import.add_argument("file")
    opml_export = src.add_parser("export", help="write all sources as OPML 2.0 (to a file, or stdout)")
    opml_export.add_argument("file", nargs="?", default="-")

    preview = commands.add_parser(
        "preview",
        help="fetch the configured sources once and print the alerts a query would produce now "
        "(no Telegram token needed)",
    )
    preview.add_argument("query", help='e.g. "OTAN Azerbaïdjan" or "(OTAN OR NATO) -football"')
    preview.add_argument("--limit", type=int, default=20, help="at most this many alerts (default 20)")
    preview.add_argument("--source", action="append", default=[], metavar="URL",
                         help="fetch this feed instead of the sources file (repeatable)")
    admin_cli.add_commands(commands, src)  # broadcast, stats, sources health (issue #8)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        setup_logging(
            settings.log_level,
            settings.log_format,
            secrets=[settings.bot_token.get_secret_value()] if settings.bot_token else [],
        )
        handler = {
            "run": _run,
            "db": _db,
            "sources": _sources,
            "preview": _preview,
            "broadcast": admin_cli.broadcast,
            "stats": admin_cli.stats,
        }[args.command]
        return handler(settings, args)
    except ConfigError as exc:
        print(f"veille: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except VeilleError as exc:
        print(f"veille: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from bot.settings import require_token

    require_token(settings)  # fail before anything starts or is even imported
    from bot.app import run

    asyncio.run(run(settings, role=args.role))
    return 0


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from bot.db import migrate
    from bot.db.engine import check_database_path, database_errors_explained

    check_database_path(settings.database_url)
    with database_errors_explained(settings.database_url):
        if args.db_command == "upgrade":
            migrate.upgrade(settings.database_url, args.revision)
            print(f"database upgraded to {args.revision}")
        elif args.db_command == "downgrade":
            migrate.downgrade(settings.database_url, args.revision)
            print(f"database downgraded to {args.revision}")
        else:
            migrate.current(settings.database_url)
    return 0


def _sources(settings: Settings, args: argparse.Namespace) -> int:
    if args.sources_command == "health":
        return admin_cli.sources_health(settings, args)
    return asyncio.run(_sources_async(settings, args))


async def _sources_async(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import Core
    from bot.db import repo

    core = Core.build(settings)
    try:
        await core.prepare(load_sources=args.sources_command == "list")
        if args.sources_command == "list":
            async with core.session_factory() as session:
                rows = await repo.list_sources(session)
            if not rows:
                print("no sources; add one with: veille sources add URL")
            for s in rows:
                state = "enabled" if s.enabled else f"DISABLED ({s.disabled_reason or 'by hand'})"
                errors = f" errors={s.error_streak} last_error={s.last_error_message!r}" if s.error_streak else ""
                print(f"{s.id:>4}  {s.name}  [{s.language or '-'}]  {s.url}  {state}{errors}")
            return 0
        if args.sources_command == "add":
            return await _add_source(core, args)
        if args.sources_command in ("import", "export"):
            return await _opml(core, args)
        async with core.session_factory() as session, session.begin():
            source = await repo.find_source(session, args.source)
            if source is None:
                print(f"no source {args.source!r}; `veille sources list` shows ids", file=sys.stderr)
                return 1
            if args.sources_command == "remove":
                await repo.delete_source(session, source.id)
                print(f"removed source {source.id} ({source.name})")
            elif args.sources_command == "enable":
                source.enabled, source.disabled_reason, source.error_streak = True, None, 0
                source.next_check_at = core.clock()
                print(f"enabled source {source.id} ({source.name})")
            else:
                source.enabled, source.disabled_reason = False, "disabled by an admin"
                print(f"disabled source {source.id} ({source.name})")
        return 0
    finally:
        await core.close()


async def _opml(core, args: argparse.Namespace) -> int:  # noqa: ANN001
    from pathlib import Path

    from bot.core.catalogue import SourceSpec
    from bot.core.opml import OpmlSource, parse_opml, render_opml
    from bot.db import repo
    from bot.fetcher.http import check_url_allowed

    if args.sources_command == "import":
        entries = parse_opml(Path(args.file).read_bytes())
        specs = []
        for entry in entries:
            try:
                check_url_allowed(entry.url, core.settings.allow_private_networks)
            except VeilleError as exc:
                print(f"  skipped {entry.url}: {exc}", file=sys.stderr)
                continue
            specs.append(SourceSpec(name=entry.title or entry.url, url=entry.url, category=entry.category))
        added, updated = await core.upsert_sources(specs)
        print(f"imported {args.file}: {added} added, {updated} already known")
        return 0
    async with core.session_factory() as session:
        sources = await repo.list_sources(session)
    document = render_opml(
        [OpmlSource(url=s.url, title=s.name, category=s.category, site_url=s.site_url) for s in sources],
        created=core.clock(),
    )
    if args.file == "-":
        sys.stdout.buffer.write(document)
        sys.stdout.flush()
    else:
        Path(args.file).write_bytes(document)
        print(f"exported {len(sources)} sources to {args.file}")
    return 0


async def _add_source(core, args: argparse.Namespace) -> int:  # noqa: ANN001
    from bot.core.catalogue import SourceSpec
    from bot.core.feeds import NotAFeedError, parse_feed
    from bot.fetcher.http import FetchError

    try:
        result = await core.fetcher.fetch(args.url)
        feed = parse_feed(result.body or b"", url=result.url, content_type=result.content_type)
    except NotAFeedError as exc:
        print(f"{args.url}: {exc}", file=sys.stderr)
        for candidate in exc.candidates:
            print(f"  feed found on that page: {candidate}", file=sys.stderr)
        return 1
    except (FetchError, VeilleError) as exc:
        print(f"{args.url}: {exc}", file=sys.stderr)
        return 1
    url = result.permanent_redirect or args.url
    name = args.name or feed.title or url
    language = args.language or (feed.language.split("-")[0].lower() if feed.language else None)
    added, _ = await core.upsert_sources([SourceSpec(name=name, url=url, language=language,
                                                     category=args.category)])
    print(f"{'added' if added else 'updated'}: {name} ({url}), {len(feed.items)} items now")
    return 0


def _preview(settings: Settings, args: argparse.Namespace) -> int:
    return asyncio.run(_preview_async(settings, args))


async def _preview_async(settings: Settings, args: argparse.Namespace) -> int:
    from bot.core.catalogue import SourceSpec, parse_catalogue
    from bot.core.feeds import parse_feed
    from bot.core.matching import Document, match_query
    from bot.core.query import QueryError, QueryLimits, parse_query
    from bot.core.summary import clean_text, summarize
    from bot.fetcher.http import Fetcher, FetcherConfig

    try:
        query = parse_query(args.query, QueryLimits(settings.max_query_length, settings.max_query_terms))
    except QueryError as exc:
        print(f"invalid query: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.source:
        specs = [SourceSpec(name=url, url=url) for url in args.source]
    elif settings.sources_file.is_file():
        specs = parse_catalogue(settings.sources_file.read_text(encoding="utf-8"), origin=str(settings.sources_file))
    else:
        print(f"no sources: {settings.sources_file} not found; pass --source URL", file=sys.stderr)
        return 1

    from bot.app import user_agent

    fetcher = Fetcher(
        FetcherConfig(
            user_agent=user_agent(settings),
            contact_url=settings.contact_url,
            connect_timeout=settings.fetch_connect_timeout,
            total_timeout=settings.fetch_timeout,
            max_body_bytes=settings.fetch_max_bytes,
            allow_private_networks=settings.allow_private_networks,
        )
    )
    await fetcher.start()
    loop = asyncio.get_running_loop()

    async def one(spec: SourceSpec) -> list[tuple[datetime, str]]:
        try:
            result = await fetcher.fetch(spec.url)
            feed = await loop.run_in_executor(
                None, functools.partial(parse_feed, result.body or b"", url=result.url,
                                        content_type=result.content_type)
            )
        except VeilleError as exc:
            print(f"  ! {spec.name}: {exc}", file=sys.stderr)
            return []
        found = []
        for item in feed.items:
            text = clean_text(item.content_text or item.summary)
            match = match_query(
                query, Document(title=item.title, text=text, source_name=spec.name, source_url=spec.url,
                                lang=item.language or spec.language or feed.language)
            )
            if match is None:
                continue
            terms = ", ".join(dict.fromkeys(h.term for h in match.hits))
            when = item.published or datetime.now(UTC)
            summary = summarize(text, language=spec.language, max_chars=settings.summary_max_chars,
                                title=item.title)
            block = (
                f"■ {item.title}\n  {spec.name} · {when:%Y-%m-%d %H:%M} UTC\n"
                + (f"  {summary}\n" if summary else "")
                + f"  🔎 {terms}\n  {item.url or ''}\n"
            )
            found.append((when, block))
        return found

    try:
        results = await asyncio.gather(*(one(spec) for spec in specs))
    finally:
        await fetcher.close()
    blocks = sorted((b for r in results for b in r), key=lambda pair: pair[0], reverse=True)
    print(f"{len(blocks)} alert(s) for {query.text!r} across {len(specs)} source(s)")
    for _, block in blocks[: args.limit]:
        print(block)
    return 0


if __name__ == "__main__":  # pragma: no cover
    logging.basicConfig()
    sys.exit(main())
