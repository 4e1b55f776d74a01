"""Texts and small formatting helpers shared by several handlers.

English msgids live in the code (`_()` / `N_()`); French is in bot/locales/fr/LC_MESSAGES/chat.po.
Everything user-supplied is escaped before it enters a message, so every reply is valid Telegram HTML.
"""

from __future__ import annotations

import base64
import binascii

from bot.core.query import QueryError
from bot.core.render import escape
from bot.db.models import Subscription
from bot.i18n import N_, Gettext

# Query errors carry a stable code and parameters; the text for people comes from here, in both languages.
QUERY_ERROR_TEXTS = {
    "unclosed_quote": N_("Unclosed quote at position {position}: add the closing quote."),
    "unbalanced_parenthesis": N_("Unbalanced parenthesis at position {position}: check ( and )."),
    "only_exclusions": N_("Nothing to match: the query only excludes. Add at least one word to look for."),
    "empty": N_("The query is empty: write at least one word."),
    "too_long": N_("The query is too long ({length} characters; at most {limit})."),
    "too_many_terms": N_("The query has too many terms ({count}; at most {limit})."),
    "too_deep": N_("Too many nested parentheses at position {position} (at most {limit} levels): simplify it."),
    "empty_phrase": N_("Empty quotes at position {position}: put words between them or remove them."),
    "empty_group": N_("Empty parentheses at position {position}: put words between them or remove them."),
    "dangling_operator": N_("{operator} at position {position} needs a term on both sides."),
    "dangling_exclusion": N_("Nothing to exclude after the minus sign at position {position}: "
                             "write the word right after it, e.g. <code>-football</code>."),
    "empty_field": N_("{field}: at position {position} needs a value, e.g. <code>{field}:OTAN</code>."),
    "bad_language": N_("Unknown language code “{value}” at position {position}: use a code such as fr or en."),
    "bad_source": N_("“{value}” at position {position} is not a site or source name: "
                     "write it like <code>source:lemonde.fr</code>."),
    "prefix_too_short": N_("The prefix “{value}” at position {position} is too short: "
                           "give at least {limit} letters before the *."),
    "no_keyword": N_("Nothing to search for: add a word or phrase; source: and lang: only narrow a search."),
    "or_without_keyword": N_("Each OR alternative needs a word or phrase to look for, and “{alternative}” has none."),
}

WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"),
            N_("Sunday"))


def query_error_text(_: Gettext, error: QueryError, query: str) -> str:
    template = QUERY_ERROR_TEXTS.get(getattr(error, "code", ""), None)
    params = {k: escape(str(v)) if isinstance(v, str) else v for k, v in (getattr(error, "params", {}) or {}).items()}
    if error.position is not None:
        params.setdefault("position", error.position)
    try:
        detail = _(template, **params) if template else escape(str(error))
    except (KeyError, IndexError):
        detail = escape(str(error))
    return _("⚠️ {detail}\n<code>{query}</code>\n/help explains the syntax.", detail=detail,
             query=escape(query[:300]))


def short(text: str, limit: int = 120) -> str:
    """`text` cut to `limit` characters (with …), then escaped for HTML."""
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def alert_label(subscription: Subscription) -> str:
    """The alert's name (escaped), else its query in <code>."""
    if subscription.name:
        return f"<b>{short(subscription.name, 80)}</b>"
    return f"<code>{short(subscription.query)}</code>"


def mode_text(_: Gettext, subscription: Subscription) -> str:
    if subscription.mode == "daily":
        return _("🗓 daily digest at {time}", time=subscription.digest_time or "08:00")
    if subscription.mode == "weekly":
        day = _(WEEKDAYS[subscription.digest_weekday or 0])
        return _("📅 weekly digest, {day} at {time}", day=day, time=subscription.digest_time or "08:00")
    return _("⚡ instant")


def sources_text(_: Gettext, subscription: Subscription) -> str:
    if not subscription.source_ids:
        return _("all sources")
    return _("{count} chosen sources", count=len(subscription.source_ids))


# --- deep links: https://t.me/<bot>?start=<payload>, payload [A-Za-z0-9_-]{1,64} --------------------


def deep_link_payload(query: str) -> str | None:
    """`sub_<words joined by _>` for plain queries, `subx_<base64url>` otherwise; None when too long."""
    words = query.split()
    if words and all(w.replace("-", "").isalnum() and w.isascii() for w in words):
        payload = "sub_" + "_".join(words)
    else:
        payload = "subx_" + base64.urlsafe_b64encode(query.encode("utf-8")).decode("ascii").rstrip("=")
    return payload if len(payload) <= 64 else None


def query_from_deep_link(payload: str | None) -> str | None:
    """The query a `/start` payload asks to follow, or None when it is not a subscription link."""
    if not payload:
        return None
    if payload.startswith("subx_"):
        data = payload[5:]
        try:
            return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode("utf-8").strip() or None
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
    if payload.startswith("sub_"):
        return payload[4:].replace("_", " ").strip() or None
    return None


COMMANDS = {
    "en": [
        ("subscribe", "Create an alert: /subscribe words"),
        ("preview", "What a query would have found this week"),
        ("list", "Your alerts: pause, edit, delivery, sources"),
        ("unsubscribe", "Delete an alert"),
        ("pause", "Pause every alert"),
        ("resume", "Resume every alert"),
        ("sources", "The news sources; propose a feed"),
        ("timezone", "Your time zone for digests"),
        ("quiet", "Quiet hours, e.g. /quiet 22:00-07:00"),
        ("channel", "Send alerts to a channel you run"),
        ("export", "Download your alerts"),
        ("import", "Import alerts or an OPML file"),
        ("lang", "Language: français or English"),
        ("help", "How to write an alert"),
        ("start", "Welcome"),
    ],
    "fr": [
        ("suivre", "Créer une alerte : /suivre mots"),
        ("apercu", "Ce qu’une requête aurait trouvé cette semaine"),
        ("liste", "Vos alertes : pause, modifier, envoi, sources"),
        ("desabonner", "Supprimer une alerte"),
        ("pause", "Mettre toutes les alertes en pause"),
        ("reprendre", "Reprendre toutes les alertes"),
        ("sources", "Les sources d’information ; proposer un flux"),
        ("fuseau", "Votre fuseau horaire pour les résumés"),
        ("silence", "Heures de silence, ex. /silence 22:00-07:00"),
        ("canal", "Envoyer les alertes dans votre canal"),
        ("exporter", "Télécharger vos alertes"),
        ("importer", "Importer des alertes ou un fichier OPML"),
        ("langue", "Langue : français ou English"),
        ("aide", "Comment écrire une alerte"),
        ("start", "Accueil"),
    ],
}
