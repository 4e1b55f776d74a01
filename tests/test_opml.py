"""OPML 2.0 import/export (bot.core.opml)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.core.opml import OpmlError, OpmlSource, parse_opml, render_opml

SAMPLE = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Mes flux</title></head>
  <body>
    <outline text="Presse">
      <outline text="Europe">
        <outline type="rss" text="EU Reporter" xmlUrl="https://www.eureporter.co/fr/feed/" htmlUrl="https://www.eureporter.co/fr/"/>
      </outline>
      <outline type="rss" title="Le Monde" xmlUrl="HTTPS://www.lemonde.fr/rss/une.xml?utm_source=opml"/>
    </outline>
    <outline type="rss" text="Avec catégorie" category="/Tech/Web,/Autre" xmlUrl="https://tech.example/feed"/>
    <outline type="rss" text="Sans dossier" xmlUrl="https://solo.example/rss"/>
    <outline type="rss" text="Doublon" xmlUrl="https://solo.example/rss"/>
    <outline type="rss" text="Mauvais schéma" xmlUrl="file:///etc/passwd"/>
    <outline text="Dossier vide"/>
  </body>
</opml>""".encode()


def test_import_keeps_names_and_folder_categories():
    assert parse_opml(SAMPLE) == (
        OpmlSource("https://www.eureporter.co/fr/feed/", "EU Reporter", "Presse/Europe", "https://www.eureporter.co/fr/"),
        OpmlSource("https://www.lemonde.fr/rss/une.xml", "Le Monde", "Presse", None),
        OpmlSource("https://tech.example/feed", "Avec catégorie", "Tech/Web", None),
        OpmlSource("https://solo.example/rss", "Sans dossier", None, None),
    )


def test_export_then_import_gives_the_same_sources():
    sources = parse_opml(SAMPLE)
    exported = render_opml(sources, created=datetime(2024, 6, 1, tzinfo=UTC))
    assert b"<dateCreated>Sat, 01 Jun 2024 00:00:00 +0000</dateCreated>" in exported
    assert sorted(parse_opml(exported), key=lambda s: s.url) == sorted(sources, key=lambda s: s.url)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<opml><body>", "not valid XML"),
        (b"<rss/>", "not OPML"),
        (b"<opml version='2.0'><head/></opml>", "no <body>"),
        (b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x "y">]><opml><body/></opml>', "entities"),
    ],
)
def test_bad_opml_is_refused_with_a_reason(data, message):
    with pytest.raises(OpmlError, match=message):
        parse_opml(data)
