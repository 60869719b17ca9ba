"""Secret scrubbing: the bot token (and any configured secret) never leaves in text we write.

``secret_variants`` is a *closed* list of the shapes a secret is commonly leaked in by code that
prints it — as is, reversed, base64 (standard / URL-safe, with and without padding), hex, its
characters joined by a separator — plus, for a Discord bot token (``id.timestamp.hmac``), its last
segment alone, the part that is actually secret. ``Scrubber`` replaces all of them in one regex
pass. It is a safety net for mistakes and debug output, not a guarantee against an owner who tries
to exfiltrate the token on purpose through an encoding outside the list.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Iterable

__all__ = ["MIN_SECRET_LENGTH", "Scrubber", "secret_variants"]

#: Shorter strings are not scrubbed: replacing every "abc" would mangle ordinary text.
MIN_SECRET_LENGTH = 4

_SEPARATORS = (",", " ", "\n", ", ")


def secret_variants(secret: str) -> list[str]:
    """The closed list of forms of ``secret`` to scrub, without duplicates or too-short forms."""
    if not secret:
        return []
    raw = secret.encode("utf-8")
    candidates = [
        secret,
        secret[::-1],
        base64.b64encode(raw).decode("ascii"),
        base64.b64encode(raw).decode("ascii").rstrip("="),
        base64.urlsafe_b64encode(raw).decode("ascii"),
        base64.urlsafe_b64encode(raw).decode("ascii").rstrip("="),
        raw.hex(),
        raw.hex().upper(),
    ]
    candidates.extend(separator.join(secret) for separator in _SEPARATORS)
    segments = secret.split(".")
    if len(segments) == 3 and all(segments):  # a Discord bot token: user id . timestamp . HMAC
        candidates.append(segments[-1])
    variants: list[str] = []
    for candidate in candidates:
        if len(candidate) >= MIN_SECRET_LENGTH and candidate not in variants:
            variants.append(candidate)
    return variants


class Scrubber:
    """Replace every variant of the configured secrets with ``replacement``."""

    def __init__(self, secrets: Iterable[str] = (), replacement: str = "[REDACTED]") -> None:
        self.replacement = replacement
        self._variants: list[str] = []
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None
        self._bytes_pattern: re.Pattern[bytes] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Add a secret (``None`` and empty strings are ignored, so an unset token is harmless)."""
        if not secret:
            return
        with self._lock:
            new = [v for v in secret_variants(secret) if v not in self._variants]
            if not new:
                return
            self._variants.extend(new)
            # Longest first, so a longer variant wins over a shorter one it contains.
            ordered = sorted(self._variants, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            self._bytes_pattern = re.compile(b"|".join(re.escape(v.encode("utf-8")) for v in ordered))

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None:
            return text
        replacement = self.replacement
        return pattern.sub(lambda _match: replacement, text)  # a function: no backslash escapes

    def scrub_bytes(self, data: bytes) -> bytes:
        pattern = self._bytes_pattern
        if pattern is None:
            return data
        replacement = self.replacement.encode("utf-8")
        return pattern.sub(lambda _match: replacement, data)

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __repr__(self) -> str:  # never the secrets themselves
        return f"<Scrubber secret_variants={len(self._variants)}>"
