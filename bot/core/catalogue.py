"""The sources file (`config/sources.toml`): a curated list of feeds loaded at start.

Format: one `[[source]]` table per feed with `name`, `url`, `language` and an optional `category`.
Loading adds new sources and updates the names of known ones; a source missing from the file is
never deleted silently (remove it with `veille sources remove`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from urllib.parse import urlsplit

from bot.errors import VeilleError


class CatalogueError(VeilleError):
    pass


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    url: str
    language: str | None = None
    category: str | None = None


def parse_catalogue(text: str, *, origin: str = "sources file") -> list[SourceSpec]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogueError(f"{origin}: not valid TOML ({exc})") from None
    entries = data.get("source", [])
    if not isinstance(entries, list):
        raise CatalogueError(f"{origin}: expected [[source]] tables")
    specs: list[SourceSpec] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise CatalogueError(f"{origin}: source #{number} is not a table")
        unknown = set(entry) - {"name", "url", "language", "category"}
        if unknown:
            raise CatalogueError(f"{origin}: source #{number} has unknown keys: {', '.join(sorted(unknown))}")
        url = str(entry.get("url", "")).strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CatalogueError(f"{origin}: source #{number} needs an http(s) url, got {url!r}")
        if url in seen:
            continue
        seen.add(url)
        name = str(entry.get("name") or parts.netloc).strip()
        language = entry.get("language")
        category = entry.get("category")
        specs.append(
            SourceSpec(
                name=name,
                url=url,
                language=str(language).strip().lower() if language else None,
                category=str(category).strip() if category else None,
            )
        )
    return specs
