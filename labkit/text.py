"""Text shown to people: the first line of an error, passwords redacted, volatile dates fixed.

Standard library only, so the doctor can use it on a machine where nothing else imports.
"""

from __future__ import annotations

import re
from urllib.parse import quote, quote_plus

# A revision's "Create Date:" line; reference revisions carry a fixed date without microseconds,
# so FRESH_DATE matches only a revision written today.
CREATE_DATE = re.compile(r"^(Create Date: ).*$", re.MULTILINE)
FRESH_DATE = re.compile(r"(Create Date: )\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+")
TODAY = r"\1(today)"
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)(?!password@)[^@\s]+@")


def first_line(text: object, default: str = "") -> str:
    """Return the first non-blank line of ``text``, stripped (``default`` when there is none)."""
    return next((ln.strip() for ln in str(text).splitlines() if ln.strip()), default)


def redact(text: str, password: str | None = None) -> str:
    """Return ``text`` with ``password`` (raw, URL-encoded or libpq-quoted) and any URL's password as ***."""
    if password:
        quoted = password.replace("\\", "\\\\").replace("'", "\\'")
        for form in sorted({password, quote(password, safe=""), quote_plus(password), quoted},
                           key=len, reverse=True):
            text = text.replace(form, "***")
    return _URL_PASSWORD.sub(r"\1***@", text)


def url_password(url: str | None) -> str | None:
    """Return the password written in a URL's text, or None (no parsing library needed)."""
    match = re.search(r"://[^:/@\s]*:([^@\s]+)@", url or "")
    return match.group(1) if match else None


def fix_create_date(text: str) -> str:
    """Return a revision's text with its Create Date line, which changes every run, as ``(today)``."""
    return CREATE_DATE.sub(TODAY, text)
