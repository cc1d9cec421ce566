"""The customer search of ``customers(query: ...)`` for the fields the app searches: the default
(unfielded) search, ``first_name:``, ``last_name:`` and ``email:``.

Shopify's search syntax (https://shopify.dev/docs/api/usage/search-syntax): terms separated by
whitespace, AND implied (``OR`` between two terms is the other connective); a term is an optional
``-`` (NOT), an optional ``field:`` and a value; a value is a name or a quoted string (single or
double quotes); ``\\`` escapes the special characters (``\\ : ( )`` and a quote); a value ending in
an unescaped ``*`` is a prefix query. The ``customers`` query's reference (2026-10 schema,
https://shopify.dev/docs/api/admin-graphql/latest/queries/customers) says the default search is "a
case-insensitive search of multiple fields", that ``email`` is a tokenized field (``email:gmail.com``
matches, a quoted address matches exactly) and that ``email:*`` selects customers with an email.

How the double reads that: text fields are split into lowercase words at every character that is
not a letter or a digit; a value is split the same way and matches when its words appear one after
another in the field (the last one as a prefix for a prefix query). The default search looks at the
first name, the last name, the full name and the email. Other fields (``id``, ``tag``, dates, order
counts) are matched by ``graphql_api``; terms the double does not model are ignored, as Shopify would
run them as full-text search over fields the double does not hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shopify_double.state import Customer

TEXT_FIELDS = ("first_name", "last_name", "email")
_WORD = re.compile(r"[^\W_]+")
_COMPARATORS = (">=", "<=", ">", "<", "=")


@dataclass(frozen=True)
class Term:
    field: str | None  # None: the default search
    op: str
    value: str
    negated: bool = False
    prefix: bool = False
    quoted: bool = False


def _read_value(text: str, i: int) -> tuple[str, int, bool, bool]:
    """(value, next index, quoted, prefix) from ``text[i:]``."""
    if i < len(text) and text[i] in "'\"":
        quote, out, i = text[i], [], i + 1
        while i < len(text) and text[i] != quote:
            if text[i] == "\\" and i + 1 < len(text):
                i += 1
            out.append(text[i])
            i += 1
        return "".join(out), i + 1, True, False
    out, prefix = [], False
    while i < len(text) and not text[i].isspace():
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == "*" and (i + 1 == len(text) or text[i + 1].isspace()):
            prefix = True
        else:
            out.append(ch)
        i += 1
    return "".join(out), i, False, prefix


def parse(query: str | None) -> list[list[Term]]:
    """The query as a disjunction of conjunctions: ``a b OR c`` → ``[[a, b], [c]]`` (AND binds
    tighter than OR, as in Shopify's grammar). Parentheses are not modelled."""
    groups: list[list[Term]] = [[]]
    text = query or ""
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        start = i
        word_end = i
        while word_end < len(text) and not text[word_end].isspace():
            word_end += 1
        word = text[start:word_end]
        if word == "OR":
            groups.append([])
            i = word_end
            continue
        if word == "AND":
            i = word_end
            continue
        negated = text[i] == "-"
        if negated:
            i += 1
        field = None
        m = re.match(r"(\w+):", text[i:])
        if m:
            field = m[1].lower()
            i += m.end()
        op = ":"
        if field is not None:
            for comparator in _COMPARATORS:
                if text.startswith(comparator, i):
                    op, i = comparator, i + len(comparator)
                    break
        value, i, quoted, prefix = _read_value(text, i)
        groups[-1].append(Term(field, op, value, negated, prefix, quoted))
    return [g for g in groups if g]


def words(text: str | None) -> list[str]:
    return _WORD.findall((text or "").lower())


def _phrase_in(value: Term, field_text: str | None) -> bool:
    wanted, have = words(value.value), words(field_text)
    if not wanted:
        return False
    n = len(wanted)
    for start in range(len(have) - n + 1):
        window = have[start : start + n]
        if window[:-1] == wanted[:-1] and (
            window[-1].startswith(wanted[-1]) if value.prefix else window[-1] == wanted[-1]
        ):
            return True
    return False


def _full_name(c: Customer) -> str:
    return " ".join(p for p in (c.first_name, c.last_name) if p)


def text_term_matches(c: Customer, term: Term) -> bool | None:
    """Whether ``c`` matches a text term; None for a term of another field."""
    if term.field is None:
        return any(_phrase_in(term, t) for t in (c.first_name, c.last_name, _full_name(c), c.email))
    if term.field == "email":
        if term.value == "" and term.prefix:  # email:*
            return bool(c.email)
        if term.quoted:
            return c.email is not None and c.email.lower() == term.value.lower()
        return _phrase_in(term, c.email)
    if term.field in ("first_name", "last_name"):
        return _phrase_in(term, getattr(c, term.field))
    return None
