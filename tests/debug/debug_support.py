"""Helpers shared by the debug-tools tests (``from debug_support import ...``)."""

from __future__ import annotations

import base64

from instrumentation.redact import secret_variants

#: A bot-token-shaped secret (id . timestamp . signature), never a real one.
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GdEbUg.s3cr3t-Signature_Part_0123456789abcdef"


def leak_forms(secret: str) -> list[str]:
    """Every form of ``secret`` that must never reach Discord (the closed list, checked by hand too)."""
    raw = secret.encode()
    forms = {
        secret,
        secret[::-1],
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        ",".join(secret),
        " ".join(secret),
        "\n".join(secret),
        ", ".join(secret),
        secret.split(".")[-1],
    }
    # The project's list must cover at least these (it may add more, e.g. upper-case hex).
    assert forms <= set(secret_variants(secret)), forms - set(secret_variants(secret))
    return sorted(forms)
