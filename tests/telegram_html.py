"""A strict checker for Telegram's HTML parse mode, for tests across the project.

What Telegram accepts (Bot API, "HTML style" under Formatting options,
https://core.telegram.org/bots/api#html-style), enforced here more strictly than the server where the
server is lenient, so a message that passes is valid on every client:

- Tags: b, strong, i, em, u, ins, s, strike, del, tg-spoiler, span class="tg-spoiler",
  a href="…", tg-emoji emoji-id="…", code, pre, code class="language-…" (only directly in pre),
  blockquote (optionally `expandable`). Nothing else: no <br>, no <p>, no self-closing tags.
- Attribute values are quoted; a, span and tg-emoji carry exactly their one attribute; links use
  http, https, tg or mailto (Telegram refuses other schemes).
- Tags nest properly; nothing nests inside code or pre except pre > code; a link does not contain a
  link; a blockquote does not contain a blockquote.
- Entities: only &lt; &gt; &amp; &quot; and numeric ones (&#38; &#x26;) for valid code points. Every
  other & and every < or > that is not part of a tag is an error.
- The visible text (tags removed, entities decoded) is not blank and is at most `max_length` UTF-16
  code units long: Telegram counts the text after parsing, and counts an emoji outside the Basic
  Multilingual Plane as two units.
"""

from __future__ import annotations

import re

__all__ = ["check_telegram_html", "visible_length", "visible_text"]

TELEGRAM_MAX_LENGTH = 4096

_SIMPLE_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler", "pre"})
_ALL_TAGS = _SIMPLE_TAGS | {"a", "span", "tg-emoji", "code", "blockquote"}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#([0-9]{1,7})|#[xX]([0-9a-fA-F]{1,6}));")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^<>]*?)?)\s*(/?)>")
_ATTRIBUTE = re.compile(r"""\s+([a-zA-Z][a-zA-Z0-9-]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'))?""")
_LINK_SCHEMES = ("http://", "https://", "tg://", "mailto:")


def check_telegram_html(text: str, *, max_length: int = TELEGRAM_MAX_LENGTH) -> None:
    """Raise AssertionError, saying where and why, unless `text` is a valid Telegram HTML message."""
    visible = visible_text(text)
    if not visible.strip():
        raise AssertionError("the message is empty once tags are removed (Telegram refuses empty messages)")
    length = _utf16_length(visible)
    if length > max_length:
        raise AssertionError(f"the visible text is {length} UTF-16 units long, more than {max_length}")


def visible_length(text: str) -> int:
    """Length of the text Telegram shows, in UTF-16 code units; raises AssertionError on invalid HTML."""
    return _utf16_length(visible_text(text))


def visible_text(text: str) -> str:
    """The text Telegram shows (tags removed, entities decoded); raises AssertionError on invalid HTML."""
    out: list[str] = []
    open_tags: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == "<":
            match = _TAG.match(text, position)
            if match is None:
                raise AssertionError(f"raw '<' at offset {position} is not a tag: {_around(text, position)}")
            _apply_tag(match, open_tags, position)
            position = match.end()
        elif char == ">":
            raise AssertionError(f"raw '>' at offset {position} must be &gt;: {_around(text, position)}")
        elif char == "&":
            decoded, position = _entity(text, position)
            out.append(decoded)
        else:
            out.append(char)
            position += 1
    if open_tags:
        raise AssertionError(f"tags left open at the end: {open_tags}")
    return "".join(out)


def _apply_tag(match: re.Match[str], open_tags: list[str], position: int) -> None:
    closing, name, attributes_text, self_closing = (
        match.group(1),
        match.group(2),
        match.group(3),
        match.group(4),
    )
    lowered = name.lower()
    if lowered not in _ALL_TAGS:
        raise AssertionError(f"tag <{name}> at offset {position} is not allowed by Telegram")
    if name != lowered:
        raise AssertionError(f"tag <{name}> at offset {position}: write tag names in lower case")
    if self_closing:
        raise AssertionError(f"self-closing tag <{name}/> at offset {position}")
    if closing:
        if attributes_text.strip():
            raise AssertionError(f"closing tag </{name}> at offset {position} has attributes")
        if not open_tags or open_tags[-1] != name:
            expected = f"</{open_tags[-1]}>" if open_tags else "no closing tag"
            raise AssertionError(f"</{name}> at offset {position} closes nothing open; expected {expected}")
        open_tags.pop()
        return
    attributes = _attributes(attributes_text, name, position)
    _check_attributes(name, attributes, open_tags, position)
    _check_nesting(name, open_tags, position)
    open_tags.append(name)


def _attributes(attributes_text: str, name: str, position: int) -> dict[str, str | None]:
    attributes: dict[str, str | None] = {}
    consumed = 0
    for match in _ATTRIBUTE.finditer(attributes_text):
        if match.start() != consumed:
            break
        consumed = match.end()
        key = match.group(1)
        if key in attributes:
            raise AssertionError(f"<{name}> at offset {position} repeats attribute {key!r}")
        raw_value = match.group(2) if match.group(2) is not None else match.group(3)
        attributes[key] = None if raw_value is None else _decode_attribute(raw_value, name, position)
    if attributes_text[consumed:].strip():
        raise AssertionError(
            f"<{name}> at offset {position}: cannot read attributes {attributes_text!r} (unquoted value?)"
        )
    return attributes


def _check_attributes(
    name: str, attributes: dict[str, str | None], open_tags: list[str], position: int
) -> None:
    where = f"<{name}> at offset {position}"
    if name == "a":
        href = attributes.get("href")
        if set(attributes) != {"href"} or not href:
            raise AssertionError(f"{where} needs exactly one non-empty href attribute, got {attributes}")
        if not href.lower().startswith(_LINK_SCHEMES):
            raise AssertionError(f"{where} links to {href!r}: Telegram accepts http, https, tg and mailto")
    elif name == "span":
        if attributes != {"class": "tg-spoiler"}:
            raise AssertionError(f'{where}: span is only allowed as <span class="tg-spoiler">')
    elif name == "tg-emoji":
        emoji_id = attributes.get("emoji-id")
        if set(attributes) != {"emoji-id"} or not emoji_id or not emoji_id.isdigit():
            raise AssertionError(f"{where} needs a numeric emoji-id attribute, got {attributes}")
    elif name == "code":
        if attributes:
            language = attributes.get("class") or ""
            if set(attributes) != {"class"} or not re.fullmatch(r"language-[\w+#.-]+", language):
                raise AssertionError(f'{where}: code only takes class="language-…", got {attributes}')
            if not open_tags or open_tags[-1] != "pre":
                raise AssertionError(f"{where}: a language class is only allowed on code directly inside pre")
    elif name == "blockquote":
        if attributes and (set(attributes) != {"expandable"} or attributes["expandable"] is not None):
            raise AssertionError(f"{where}: blockquote only takes the bare attribute expandable")
    elif attributes:
        raise AssertionError(f"{where} takes no attributes, got {attributes}")


def _check_nesting(name: str, open_tags: list[str], position: int) -> None:
    if "code" in open_tags or ("pre" in open_tags and not (name == "code" and open_tags[-1] == "pre")):
        raise AssertionError(f"<{name}> at offset {position} is inside code/pre, which holds only text")
    if name == "a" and "a" in open_tags:
        raise AssertionError(f"<a> at offset {position} is inside another link")
    if name == "blockquote" and "blockquote" in open_tags:
        raise AssertionError(f"<blockquote> at offset {position} is inside another blockquote")


def _decode_attribute(value: str, name: str, position: int) -> str:
    if "<" in value or ">" in value:
        raise AssertionError(f"<{name}> at offset {position}: raw < or > in an attribute value")
    out: list[str] = []
    index = 0
    while index < len(value):
        if value[index] == "&":
            decoded, index = _entity(value, index)
            out.append(decoded)
        else:
            out.append(value[index])
            index += 1
    return "".join(out)


def _entity(text: str, position: int) -> tuple[str, int]:
    match = _ENTITY.match(text, position)
    if match is None:
        raise AssertionError(
            f"'&' at offset {position} starts no allowed entity (&lt; &gt; &amp; &quot; &#N;): {_around(text, position)}"
        )
    named, decimal, hexadecimal = match.groups()
    if named:
        return _NAMED_ENTITIES[named], match.end()
    code_point = int(decimal) if decimal else int(hexadecimal, 16)
    if code_point == 0 or code_point > 0x10FFFF or 0xD800 <= code_point <= 0xDFFF:
        raise AssertionError(f"entity {match.group(0)} at offset {position} is not a valid character")
    return chr(code_point), match.end()


def _utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _around(text: str, position: int) -> str:
    return repr(text[max(0, position - 20) : position + 20])
