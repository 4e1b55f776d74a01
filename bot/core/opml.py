"""OPML 2.0 import and export of sources (http://opml.org/spec2.opml), names and categories kept.

Import rules:

- Every ``<outline>`` with an ``xmlUrl`` is a source; its name is ``text``, else ``title``.
- Its category is the ``category`` attribute's first entry when present (a comma-separated list
  of slash paths in OPML 2.0; the leading ``/`` is dropped), else the names of the outlines that
  contain it, joined by ``/`` ("Presse/Europe").
- Only http(s) feed URLs are kept (canonical form, see ``identity.canonical_url``); a URL seen
  twice is kept once, with its first name and category.
- The document is read with entities off, no DTD and no network (an OPML file is user input).
  Malformed files raise ``OpmlError`` with the parser's reason.

Export rules: one top-level ``<outline>`` per category (sorted) holding its sources, sources
without a category at the top level; ``type="rss"``, ``text`` and ``title`` set to the name.
The creation date is a parameter (pure module: no clock).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from lxml import etree

from bot.core.identity import canonical_url
from bot.errors import VeilleError

MAX_SOURCES = 10_000


class OpmlError(VeilleError):
    """The file is not an OPML document Veille can read; the message says why."""


@dataclass(frozen=True, slots=True)
class OpmlSource:
    url: str
    title: str | None = None
    category: str | None = None
    site_url: str | None = None


def parse_opml(data: bytes) -> tuple[OpmlSource, ...]:
    """The sources an OPML file lists (see the module docstring)."""
    if not data or not data.strip():
        raise OpmlError("the OPML file is empty")
    if b"<!ENTITY" in data[:65536].upper():
        raise OpmlError("the OPML file declares XML entities, which Veille refuses to read")
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False,
        remove_comments=True, remove_pis=True,
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as error:
        raise OpmlError(f"the OPML file is not valid XML ({error})") from None
    if not isinstance(root.tag, str) or etree.QName(root).localname.lower() != "opml":
        raise OpmlError("this file is not OPML (its root element is not <opml>)")
    body = next((c for c in root if isinstance(c.tag, str) and etree.QName(c).localname == "body"), None)
    if body is None:
        raise OpmlError("the OPML file has no <body>")
    found: dict[str, OpmlSource] = {}
    _collect(body, (), found)
    return tuple(found.values())


def _collect(parent: Any, path: tuple[str, ...], found: dict[str, OpmlSource]) -> None:
    for outline in parent:
        if not isinstance(outline.tag, str) or etree.QName(outline).localname != "outline":
            continue
        name = _clean(outline.get("text")) or _clean(outline.get("title"))
        xml_url = outline.get("xmlUrl") or outline.get("xmlurl") or outline.get("url")
        if xml_url:
            url = canonical_url(xml_url)
            if url and url not in found and len(found) < MAX_SOURCES:
                found[url] = OpmlSource(
                    url=url,
                    title=name,
                    category=_category_attribute(outline.get("category")) or ("/".join(path) or None),
                    site_url=canonical_url(outline.get("htmlUrl")),
                )
        # Folders hold sources; a source outline may hold more sources (rare, but seen).
        _collect(outline, path + (name,) if name and not xml_url else path, found)


def _category_attribute(value: str | None) -> str | None:
    if not value:
        return None
    first = value.split(",")[0].strip().strip("/")
    return first or None


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    return " ".join(value.split()) or None


def render_opml(
    sources: Iterable[OpmlSource], *, created: datetime | None = None, title: str = "Veille sources"
) -> bytes:
    """An OPML 2.0 document listing ``sources``, grouped by category."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    if created is not None:
        etree.SubElement(head, "dateCreated").text = format_datetime(created)
    body = etree.SubElement(root, "body")
    by_category: dict[str | None, list[OpmlSource]] = {}
    for source in sources:
        by_category.setdefault(source.category or None, []).append(source)
    for source in by_category.pop(None, []):
        _source_outline(body, source)
    for category in sorted(by_category, key=lambda c: (c or "").casefold()):
        folder = etree.SubElement(body, "outline", text=category or "", title=category or "")
        for source in by_category[category]:
            _source_outline(folder, source)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _source_outline(parent: Any, source: OpmlSource) -> None:
    name = source.title or source.url
    attributes = {"type": "rss", "text": name, "title": name, "xmlUrl": source.url}
    if source.site_url:
        attributes["htmlUrl"] = source.site_url
    if source.category:
        attributes["category"] = "/" + source.category
    etree.SubElement(parent, "outline", attributes)
