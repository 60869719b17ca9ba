"""secret_variants and Scrubber: every listed form of the token is replaced, in text and bytes."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from instrumentation.redact import MIN_SECRET_LENGTH, Scrubber, secret_variants

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.abcdefghijklmnopqrstuvwxyz0123456789AB"


def test_variants_cover_the_closed_list() -> None:
    raw = TOKEN.encode()
    variants = secret_variants(TOKEN)
    expected = {
        TOKEN,
        TOKEN[::-1],
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        ",".join(TOKEN),
        " ".join(TOKEN),
        "\n".join(TOKEN),
        ", ".join(TOKEN),
        "abcdefghijklmnopqrstuvwxyz0123456789AB",  # the HMAC part of a bot token
    }
    assert set(variants) == expected
    assert len(variants) == len(set(variants))


def test_non_token_secret_has_no_segment_variant_and_short_forms_are_dropped() -> None:
    assert "def" not in secret_variants("abc.def")  # two segments: not a bot token
    assert "xy" not in secret_variants("emulator-token.abc.xy")  # segment below the minimum length
    assert secret_variants("") == []
    assert all(len(v) >= MIN_SECRET_LENGTH for v in secret_variants("abcd.e.f"))


def test_scrub_replaces_every_variant_in_text_and_bytes() -> None:
    scrubber = Scrubber([TOKEN])
    for variant in secret_variants(TOKEN):
        text = f"before {variant} after"
        assert scrubber.scrub(text) == "before [REDACTED] after"
        assert scrubber.scrub_bytes(text.encode()) == b"before [REDACTED] after"


def test_empty_scrubber_is_falsy_and_a_no_op() -> None:
    scrubber = Scrubber([None, ""])  # type: ignore[list-item]  # an unset token is harmless
    assert not scrubber
    assert scrubber.scrub("nothing to hide") == "nothing to hide"
    assert scrubber.scrub_bytes(b"raw") == b"raw"
    scrubber.add(TOKEN)
    assert scrubber
    assert scrubber.scrub(TOKEN) == "[REDACTED]"


def test_replacement_is_literal_and_repr_hides_secrets() -> None:
    scrubber = Scrubber(["hunter2-secret"], replacement=r"<\1 gone>")
    assert scrubber.scrub("pw=hunter2-secret;") == r"pw=<\1 gone>;"
    assert "hunter2" not in repr(scrubber)


def test_several_secrets_and_longest_match_first() -> None:
    scrubber = Scrubber(["webhook-token-123", "webhook-token-123-extended"])
    assert scrubber.scrub("a webhook-token-123-extended b webhook-token-123") == "a [REDACTED] b [REDACTED]"


@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=8, max_size=60),
    prefix=st.text(max_size=30),
    suffix=st.text(max_size=30),
)
def test_no_variant_survives_scrubbing(secret: str, prefix: str, suffix: str) -> None:
    scrubber = Scrubber([secret])
    for variant in secret_variants(secret):
        scrubbed = scrubber.scrub(prefix + variant + suffix)
        assert secret not in scrubbed
        assert variant not in scrubbed
