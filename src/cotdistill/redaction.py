"""Keep secrets out of files and logs: known secret values, credentials inside URLs.

* ``register_secret(value)``: a value (an API key read from the environment) that must never be
  written; ``redact_text(text)`` replaces every registered value with ``***``.
* ``strip_url_credentials(url)``: ``http://user:KEY@host/v1`` -> ``http://host/v1`` (any other
  string is returned unchanged); ``url_credentials(url)`` returns ``(user, password)`` or None.
* ``RedactingFilter``: a ``logging.Filter`` for handlers that redacts every record's message,
  so third-party log lines (httpx, transformers) cannot leak a registered value either.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary text
_URL_WITH_USERINFO = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s@]+)@")

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember ``value`` as a secret (ignored when empty or too short to mask safely)."""
    if value and len(value) >= MIN_SECRET_LENGTH:
        _secrets.add(value)


def redact_text(text: str, extra: tuple[str, ...] = ()) -> str:
    """``text`` with every registered secret (and ``extra`` values) masked and URL credentials removed."""
    values = sorted({*_secrets, *(v for v in extra if v and len(v) >= MIN_SECRET_LENGTH)}, key=len, reverse=True)
    for value in values:
        text = text.replace(value, MASK)
    return _URL_WITH_USERINFO.sub(r"\1", text)


def url_credentials(url: str) -> tuple[str, str] | None:
    """``(user, password)`` from a URL's userinfo part, or None when it has none (or is not a URL)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.username is None and parts.password is None:
        return None
    return parts.username or "", parts.password or ""


def strip_url_credentials(value: str) -> str:
    """``value`` without ``user:password@`` when it is a URL that has them; otherwise unchanged."""
    if "://" not in value or "@" not in value:
        return value
    try:
        parts = urlsplit(value)
    except ValueError:
        return _URL_WITH_USERINFO.sub(r"\1", value)
    if parts.username is None and parts.password is None:
        return value
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with ``redact_text`` (attach it to a handler)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a malformed call: let the handler report it as usual
            return True
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
