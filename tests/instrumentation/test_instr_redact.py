"""secret_variants, the shape rules and Scrubber: every covered form is replaced, in text and bytes."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from instrumentation.redact import (
    MAX_SEPARATOR_LENGTH,
    MIN_SECRET_LENGTH,
    Scrubber,
    redact_webhook_urls,
    secret_variants,
)

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


# -- shape rules: any separator, list reprs, whitespace inside, split outputs, webhook URLs ---------


@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=8, max_size=60),
    separator=st.text(min_size=1, max_size=MAX_SEPARATOR_LENGTH),
    prefix=st.text(max_size=20),
    suffix=st.text(max_size=20),
)
def test_characters_joined_by_any_one_separator_are_scrubbed(
    secret: str, separator: str, prefix: str, suffix: str
) -> None:
    scrubbed = Scrubber([secret]).scrub(prefix + separator.join(secret) + suffix)
    assert separator.join(secret) not in scrubbed
    assert "[REDACTED]" in scrubbed


@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=8, max_size=60),
    cuts=st.lists(st.tuples(st.integers(1, 59), st.sampled_from([" ", "\n", "\t", "  ", "\r\n"]))),
)
def test_whitespace_anywhere_inside_a_secret_is_scrubbed(secret: str, cuts: list[tuple[int, str]]) -> None:
    text = secret
    for position, space in sorted(cuts, reverse=True):
        if position < len(text):
            text = text[:position] + space + text[position:]
    scrubbed = Scrubber([secret]).scrub(f"<{text}>")
    assert scrubbed == "<[REDACTED]>"


def test_list_and_tuple_reprs_and_their_pretty_printed_form() -> None:
    import json
    import pprint

    scrubber = Scrubber([TOKEN])
    signature = TOKEN.split(".")[-1]
    for form in (str(list(TOKEN)), repr(tuple(TOKEN)), str(list(signature)), pprint.pformat(list(TOKEN))):
        assert scrubber.scrub(f"a {form} b") == "a [REDACTED] b"
    assert scrubber.scrub(json.dumps(list(TOKEN))) == '["[REDACTED]"]'
    quoted = Scrubber(["it's\\a-secret"])  # characters whose repr is not 'c'
    assert quoted.scrub(str(list("it's\\a-secret"))) == "[REDACTED]"


def test_the_documented_limits_are_real_limits() -> None:
    scrubber = Scrubber([TOKEN])
    too_long = "x" * (MAX_SEPARATOR_LENGTH + 1)
    assert "[REDACTED]" not in scrubber.scrub(too_long.join(TOKEN))
    assert "[REDACTED]" not in scrubber.scrub(TOKEN[:30])  # a fragment alone
    mixed = "".join(c + ("-" if i % 2 else "+") for i, c in enumerate(TOKEN))
    assert "[REDACTED]" not in scrubber.scrub(mixed)  # different separators


def test_scrub_parts_catches_a_secret_split_across_pieces_and_keeps_the_rest() -> None:
    scrubber = Scrubber([TOKEN])
    assert scrubber.scrub_parts(["out\n" + TOKEN[:35] + "\n", TOKEN[35:] + " tail"]) == [
        "out\n[REDACTED]\n",
        " tail",
    ]
    assert scrubber.scrub_parts(["a", TOKEN[:10], TOKEN[10:40], TOKEN[40:] + "z"]) == [
        "a",
        "[REDACTED]",
        "",
        "z",
    ]
    assert scrubber.scrub_parts(["no secret", "here"]) == ["no secret", "here"]
    assert Scrubber().scrub_parts(["a", "b"]) == ["a", "b"]


def test_webhook_and_interaction_tokens_in_urls_are_redacted_without_a_configured_secret() -> None:
    scrubber = Scrubber()
    line = (
        'http://127.0.0.1:9 "POST /api/v10/webhooks/123/AbC-dEf_123.x?wait=1 HTTP/1.1" 204; '
        "/interactions/99/aW50ZXJhY3Rpb24/callback; route /webhooks/{webhook_id}/{webhook_token}"
    )
    assert scrubber.scrub(line) == (
        'http://127.0.0.1:9 "POST /api/v10/webhooks/123/[REDACTED]?wait=1 HTTP/1.1" 204; '
        "/interactions/99/[REDACTED]/callback; route /webhooks/{webhook_id}/{webhook_token}"
    )
    assert redact_webhook_urls("https://discord.com/api/webhooks/1/t", "<x>") == (
        "https://discord.com/api/webhooks/1/<x>"
    )
    assert scrubber.scrub_bytes(b"webhooks/1/tok\xff") == b"webhooks/1/[REDACTED]\xff"


def test_bytes_that_are_not_utf8_pass_through_and_are_still_scrubbed() -> None:
    scrubber = Scrubber([TOKEN])
    data = b"\xff\xfe" + TOKEN.encode() + b"\x80 " + " ".join(TOKEN).encode()
    assert scrubber.scrub_bytes(data) == b"\xff\xfe[REDACTED]\x80 [REDACTED]"
    binary = bytes(range(256)) * 4
    assert scrubber.scrub_bytes(binary) is binary
