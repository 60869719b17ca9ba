"""Secret scrubbing: the bot token (and any configured secret) never leaves in text we write.

Two kinds of rule, for every configured secret:

* **exact forms** (``secret_variants``): the secret as is, reversed, base64 (standard / URL-safe,
  with and without padding), hex (lower and upper case), its characters joined by ``,``, a space, a
  newline or ``, ``, and, for a Discord bot token (``id.timestamp.hmac``), its last segment alone,
  the part that is actually secret;
* **shape rules** (``form_patterns``), regular expressions built from the secret's *raw forms* (the
  secret itself and, for a bot token, its last segment):

  - **joined**: its characters with any one separator (1 to ``MAX_SEPARATOR_LENGTH`` characters,
    newlines included) repeated between every two of them: ``"-".join(t)``, ``" | ".join(t)``;
  - **list or tuple repr**: ``str(list(t))``, ``repr(tuple(t))``, pretty-printed over lines too;
  - **split by whitespace**: its characters with any run of whitespace (or none) between any of
    them: a secret printed in two halves on two lines, wrapped by ``textwrap``, ...

``Scrubber`` replaces all of them (one regex pass per kind of rule, the list-repr pass only on text
that has a quoted character of a secret), and webhook / interaction tokens in URLs
(``.../webhooks/<id>/<token>``, ``.../interactions/<id>/<token>/callback``) whatever the token.
``Scrubber.scrub_parts`` scrubs consecutive pieces of one output as one text, so a secret split
across them is caught too. Bytes are scrubbed with the same rules (decoded as UTF-8, undecodable
bytes kept as they are).

It is a safety net for mistakes and debug output, not a guarantee against an owner who tries to
exfiltrate the token on purpose: a fragment of a secret, other encodings (base64 of part of it,
ROT13, gzip, ...) and arbitrary transformations are out of reach. See docs/debugging.md.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_SEPARATOR_LENGTH",
    "MIN_SECRET_LENGTH",
    "Scrubber",
    "form_patterns",
    "raw_forms",
    "redact_webhook_urls",
    "secret_variants",
]

#: Shorter strings are not scrubbed: replacing every "abc" would mangle ordinary text.
MIN_SECRET_LENGTH = 4

#: The longest separator the "joined" rule recognises between a secret's characters. A bound keeps
#: the scan linear (at most this many tries where a secret's first character appears).
MAX_SEPARATOR_LENGTH = 64

_SEPARATORS = (",", " ", "\n", ", ")

#: A webhook's or an interaction's token in a URL path (the id stays, the token goes).
_TOKEN_IN_URL = re.compile(r"(?<![\w-])((?:webhooks|interactions)/\d+/)([\w\-.~%+=:]+)", re.ASCII)


def secret_variants(secret: str) -> list[str]:
    """The closed list of exact forms of ``secret``, without duplicates or too-short forms."""
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
    candidates.extend(raw_forms(secret)[1:])
    variants: list[str] = []
    for candidate in candidates:
        if len(candidate) >= MIN_SECRET_LENGTH and candidate not in variants:
            variants.append(candidate)
    return variants


def raw_forms(secret: str) -> list[str]:
    """The strings the shape rules are built from: the secret, and a bot token's HMAC segment."""
    forms = [secret]
    segments = secret.split(".")
    if len(segments) == 3 and all(segments):  # a Discord bot token: user id . timestamp . HMAC
        forms.append(segments[-1])
    return [form for form in dict.fromkeys(forms) if len(form) >= MIN_SECRET_LENGTH]


def form_patterns(form: str, group: str) -> dict[str, str]:
    """The shape rules of one raw form: ``{"joined": regex, "listed": regex, "split": regex}``.

    ``group`` names the separator's capture group (unique within one compiled pattern).
    """
    chars = [re.escape(c) for c in form]
    # Greedy: the regex engine then skips quickly to where the next character can follow.
    separator = f"(?P<{group}>.{{1,{MAX_SEPARATOR_LENGTH}}})"
    items = [re.escape(repr(c)) for c in form]
    return {
        "joined": chars[0] + separator + chars[1] + "".join(f"(?P={group})" + c for c in chars[2:]),
        "listed": r"[\[(]?" + r",\s*".join(items) + r",?[\])]?",
        "split": r"\s*".join(chars),
    }


def redact_webhook_urls(text: str, replacement: str = "[REDACTED]") -> str:
    """``.../webhooks/<id>/<token>...`` and ``.../interactions/<id>/<token>/...`` without the token."""
    if "webhooks/" not in text and "interactions/" not in text:
        return text
    return _TOKEN_IN_URL.sub(lambda match: match.group(1) + replacement, text)


@dataclass(frozen=True)
class _Pass:
    pattern: re.Pattern[str]
    #: The pass runs only on text containing one of these (none: always).
    needles: tuple[str, ...] = ()

    def wanted(self, text: str) -> bool:
        return not self.needles or any(needle in text for needle in self.needles)


class Scrubber:
    """Replace every form of the configured secrets (and tokens in webhook URLs) with ``replacement``.

    Truthy once it knows a secret (webhook URLs are redacted either way).
    """

    def __init__(self, secrets: Iterable[str] = (), replacement: str = "[REDACTED]") -> None:
        self.replacement = replacement
        self._secrets: list[str] = []
        self._variants: list[str] = []
        self._lock = threading.Lock()
        self._passes: tuple[_Pass, ...] = ()
        self._combined: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        """Add a secret (``None`` and empty strings are ignored, so an unset token is harmless)."""
        if not secret:
            return
        with self._lock:
            if secret in self._secrets:
                return
            self._secrets.append(secret)
            self._variants.extend(v for v in secret_variants(secret) if v not in self._variants)
            self._compile()

    def _compile(self) -> None:
        forms = list(dict.fromkeys(form for secret in self._secrets for form in raw_forms(secret)))
        forms.sort(key=len, reverse=True)  # a whole token before its HMAC segment
        rules = [form_patterns(form, f"_sep{index}") for index, form in enumerate(forms)]
        # Exact forms the shape rules already cover (the raw forms, joined by a listed separator).
        covered = {sep.join(form) for form in forms for sep in ("", *_SEPARATORS)}
        exact = [v for v in self._variants if v not in covered]
        literals = [re.escape(v) for v in sorted(exact, key=len, reverse=True)]
        by_kind = {kind: [rule[kind] for rule in rules] for kind in ("listed", "joined", "split")}
        # One pass per kind: a single alternation of every rule is three times slower, because the
        # regex engine can no longer skip ahead to where one of them can start.
        passes = [
            _Pass(_alternation(by_kind["listed"]), tuple(repr(form[0]) for form in forms)),
            _Pass(_alternation(by_kind["joined"])),
            _Pass(_alternation(by_kind["split"])),
            _Pass(_alternation(literals)),
        ]
        self._passes = tuple(p for p in passes if p.pattern.pattern)
        # For scrub_parts, which needs every match's place in one text.
        self._combined = _alternation([*by_kind["listed"], *by_kind["joined"], *literals, *by_kind["split"]])

    def _replace(self) -> Callable[[re.Match[str]], str]:
        replacement = self.replacement
        return lambda _match: replacement  # a function: no backslash escapes in the replacement

    def scrub(self, text: str) -> str:
        replace = self._replace()
        for scrub_pass in self._passes:
            if scrub_pass.wanted(text):
                text = scrub_pass.pattern.sub(replace, text)
        return redact_webhook_urls(text, self.replacement)

    def scrub_bytes(self, data: bytes) -> bytes:
        """The same rules on bytes (UTF-8; bytes that do not decode pass through unchanged)."""
        text = data.decode("utf-8", "surrogateescape")
        scrubbed = self.scrub(text)
        return data if scrubbed == text else scrubbed.encode("utf-8", "surrogateescape")

    def scrub_parts(self, parts: Sequence[str]) -> list[str]:
        """Scrub consecutive pieces of one output as if they were one text.

        A secret split across pieces (printed in halves, half printed and half returned) is caught:
        its replacement goes into the piece where it starts, the rest of it is cut from the pieces it
        runs into, and a piece keeps the whitespace that ended it. Each piece is then scrubbed alone.
        """
        pattern = self._combined
        if pattern is None or len(parts) < 2:
            return [self.scrub(part) for part in parts]
        joined = "".join(parts)
        spans = [match.span() for match in pattern.finditer(joined)]
        result: list[str] = []
        low = 0
        for part in parts:
            high = low + len(part)
            pieces: list[str] = []
            position = low
            for start, end in spans:
                if end <= low or start >= high:
                    continue
                if start > position:
                    pieces.append(joined[position:start])
                covered = joined[max(start, low) : min(end, high)]
                if start >= low:
                    pieces.append(self.replacement)
                if end > high:  # the secret goes on in the next piece: keep this one's line break
                    pieces.append(covered[len(covered.rstrip()) :])
                position = min(end, high)
            pieces.append(joined[position:high])
            result.append(self.scrub("".join(pieces)))
            low = high
        return result

    def __bool__(self) -> bool:
        return bool(self._passes)

    def __repr__(self) -> str:  # never the secrets themselves
        return f"<Scrubber secrets={len(self._secrets)} exact_variants={len(self._variants)}>"


def _alternation(sources: Sequence[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{source})" for source in sources), re.DOTALL)
