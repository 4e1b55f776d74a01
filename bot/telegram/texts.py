"""Texts shared by several handlers."""

from __future__ import annotations

from bot.core.query import QueryError
from bot.core.render import escape
from bot.i18n import N_, Gettext

# Query errors carry a stable code; the English text comes from the parser, the French from here.
QUERY_ERROR_TEXTS = {
    "unclosed_quote": N_("Unclosed quote at position {position}: add the closing quote."),
    "unbalanced_parenthesis": N_("Unbalanced parenthesis at position {position}: check ( and )."),
    "only_exclusions": N_("Nothing to match: the query only excludes. Add at least one word to look for."),
    "empty": N_("The query is empty: write at least one word."),
    "too_long": N_("The query is too long ({length} characters; at most {limit})."),
    "too_many_terms": N_("The query has too many terms ({count}; at most {limit})."),
}


def query_error_text(_: Gettext, error: QueryError, query: str) -> str:
    template = QUERY_ERROR_TEXTS.get(getattr(error, "code", ""), None)
    params = dict(getattr(error, "params", {}) or {})
    if error.position is not None:
        params.setdefault("position", error.position)
    try:
        detail = _(template, **params) if template else escape(str(error))
    except (KeyError, IndexError):
        detail = escape(str(error))
    return _("⚠️ {detail}\n<code>{query}</code>\n/help explains the syntax.", detail=detail,
             query=escape(query[:300]))


COMMANDS = {
    "en": [
        ("subscribe", "Create an alert: /subscribe words"),
        ("list", "Your alerts"),
        ("unsubscribe", "Delete an alert"),
        ("help", "How to write an alert"),
        ("start", "Welcome"),
    ],
    "fr": [
        ("subscribe", "Créer une alerte : /subscribe mots"),
        ("list", "Vos alertes"),
        ("unsubscribe", "Supprimer une alerte"),
        ("help", "Comment écrire une alerte"),
        ("start", "Accueil"),
    ],
}
