"""Message objects: validation (Discord's limits and error bodies) and payload building."""

from __future__ import annotations

import mimetypes
import re
from typing import Any

import emoji as unicode_emoji

from discord_emulator.core.models import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    GUILD_TEXT,
    Channel,
    StoredMessage,
    User,
    iso_now,
)
from discord_emulator.core.state import WorldState

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000
_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")

# Message types.
DEFAULT = 0
REPLY = 19
CHAT_INPUT_COMMAND = 20


class ApiError(Exception):
    """An error answer in Discord's shape: HTTP status + {"code", "message", "errors"?}."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return body


def not_found(what: str, code: int) -> ApiError:
    return ApiError(404, code, f"Unknown {what}")


def missing_permissions() -> ApiError:
    return ApiError(403, 50013, "Missing Permissions")


def form_error(path: str, code: str, message: str) -> ApiError:
    """400 Invalid Form Body, the error placed at ``path`` (dotted: ``embeds.0.title``)."""
    errors: dict[str, Any] = {}
    node = errors
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = {"_errors": [{"code": code, "message": message}]}
    return ApiError(400, 50035, "Invalid Form Body", errors)


def _check_len(value: Any, limit: int, path: str) -> int:
    if value is None:
        return 0
    if not isinstance(value, str):
        raise form_error(path, "BASE_TYPE_STRING", "Must be a string.")
    if len(value) > limit:
        raise form_error(path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")
    return len(value)


def validate_embeds(embeds: Any) -> list[dict[str, Any]]:
    if embeds is None:
        return []
    if not isinstance(embeds, list):
        raise form_error("embeds", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    if len(embeds) > MAX_EMBEDS:
        raise form_error("embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length.")
    total = 0
    result = []
    for i, embed in enumerate(embeds):
        if not isinstance(embed, dict):
            raise form_error(
                f"embeds.{i}", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType"
            )
        total += _check_len(embed.get("title"), 256, f"embeds.{i}.title")
        total += _check_len(embed.get("description"), 4096, f"embeds.{i}.description")
        footer = embed.get("footer") or {}
        total += _check_len(footer.get("text"), 2048, f"embeds.{i}.footer.text")
        author = embed.get("author") or {}
        total += _check_len(author.get("name"), 256, f"embeds.{i}.author.name")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            raise form_error(f"embeds.{i}.fields", "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
        for j, fld in enumerate(fields):
            total += _check_len(fld.get("name"), 256, f"embeds.{i}.fields.{j}.name")
            total += _check_len(fld.get("value"), 1024, f"embeds.{i}.fields.{j}.value")
            if not fld.get("name") or not fld.get("value"):
                raise form_error(f"embeds.{i}.fields.{j}", "BASE_TYPE_REQUIRED", "This field is required")
        result.append({"type": "rich", **embed})
    if total > MAX_EMBED_TOTAL:
        raise form_error("embeds", "MAX_EMBED_SIZE_EXCEEDED", "Embed size exceeds maximum size of 6000")
    return result


def attachment_payloads(
    state: WorldState, base_url: str, channel_id: int, files: list[tuple[str, bytes]]
) -> list[dict[str, Any]]:
    result = []
    for filename, data in files:
        aid = state.next_id()
        url = f"{base_url}/attachments/{channel_id}/{aid}/{filename}"
        result.append(
            {
                "id": str(aid),
                "filename": filename,
                "size": len(data),
                "url": url,
                "proxy_url": url,
                "content_type": mimetypes.guess_type(filename)[0] or "application/octet-stream",
            }
        )
    return result


def mentions_in(state: WorldState, channel: Channel, content: str) -> tuple[list[dict[str, Any]], list[str]]:
    if "<@" not in content:
        return [], []
    users = []
    for raw in dict.fromkeys(_MENTION.findall(content)):
        user = state.users.get(int(raw))
        if user is not None:
            users.append(user.payload())
    roles = []
    guild = state.guilds.get(channel.guild_id) if channel.guild_id else None
    if guild is not None:
        roles = [r for r in dict.fromkeys(_ROLE_MENTION.findall(content)) if int(r) in guild.roles]
    return users, roles


def build_message(
    state: WorldState,
    channel: Channel,
    author: User,
    body: dict[str, Any],
    *,
    attachments: list[dict[str, Any]] | None = None,
    files: list[tuple[str, bytes]] | None = None,
    webhook_id: int | None = None,
    interaction: dict[str, Any] | None = None,
    require_content: bool = True,
    flags: int = 0,
) -> StoredMessage:
    """Validate a create body (REST, webhook or interaction response) and build the stored message."""
    content = body.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        content = str(content)
    _check_len(content, MAX_CONTENT, "content")
    embeds = validate_embeds(body.get("embeds"))
    attachments = attachments or []
    components = body.get("components") or []
    has_poll = bool(body.get("poll"))
    if require_content and not (
        content or embeds or attachments or components or body.get("sticker_ids") or has_poll
    ):
        raise ApiError(400, 50006, "Cannot send an empty message")
    mentions, mention_roles = mentions_in(state, channel, content)
    mid = state.next_id()
    flags |= int(body.get("flags") or 0) & (FLAG_EPHEMERAL | (1 << 2) | (1 << 12))  # ephemeral, suppress
    payload: dict[str, Any] = {
        "id": str(mid),
        "channel_id": str(channel.id),
        "author": author.payload(),
        "content": content,
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "tts": bool(body.get("tts", False)),
        "mention_everyone": False,
        "mentions": mentions,
        "mention_roles": mention_roles,
        "attachments": attachments,
        "embeds": embeds,
        "pinned": False,
        "type": DEFAULT,
        "flags": flags,
        "components": components,
    }
    if channel.guild_id is not None:
        payload["guild_id"] = str(channel.guild_id)
    if body.get("nonce") is not None:
        payload["nonce"] = body["nonce"]
    if webhook_id is not None:
        payload["webhook_id"] = str(webhook_id)
    reference = body.get("message_reference")
    if isinstance(reference, dict) and reference.get("message_id"):
        ref_channel = int(reference.get("channel_id") or channel.id)
        ref_id = int(reference["message_id"])
        target = state.channels[ref_channel].messages.get(ref_id) if ref_channel in state.channels else None
        if target is None:
            if reference.get("fail_if_not_exists", True):
                raise form_error("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
        else:
            payload["type"] = REPLY
            payload["message_reference"] = {
                "type": 0,
                "message_id": str(ref_id),
                "channel_id": str(ref_channel),
                "guild_id": str(channel.guild_id) if channel.guild_id else None,
            }
            payload["referenced_message"] = target.payload
    interaction_id = None
    if interaction is not None:
        interaction_id = int(interaction["id"])
        user = interaction["member"]["user"] if "member" in interaction else interaction["user"]
        payload["type"] = CHAT_INPUT_COMMAND
        payload["application_id"] = str(state.application_id)
        payload["webhook_id"] = str(state.application_id)
        payload["interaction_metadata"] = {
            "id": str(interaction_id),
            "type": interaction["type"],
            "user": user,
            "authorizing_integration_owners": interaction.get("authorizing_integration_owners", {}),
        }
    return StoredMessage(
        payload=payload,
        channel_id=channel.id,
        author_id=author.id,
        files=list(files or []),
        interaction_id=interaction_id,
        webhook_id=webhook_id,
    )


def apply_edit(
    message: StoredMessage,
    body: dict[str, Any],
    *,
    attachments: list[dict[str, Any]] | None = None,
    files: list[tuple[str, bytes]] | None = None,
) -> None:
    """PATCH semantics: only the given fields change; an edit ends a deferred "thinking" state."""
    payload = message.payload
    if "content" in body:
        content = body["content"] or ""
        _check_len(content, MAX_CONTENT, "content")
        payload["content"] = content
    if "embeds" in body:
        payload["embeds"] = validate_embeds(body["embeds"])
    if "components" in body:
        payload["components"] = body["components"] or []
    if "attachments" in body or attachments:
        kept_ids = {str(a.get("id")) for a in body.get("attachments") or [] if isinstance(a, dict)}
        kept = [a for a in payload.get("attachments", []) if a["id"] in kept_ids]
        payload["attachments"] = kept + list(attachments or [])
    if files:
        message.files = [*message.files, *files]
    flags = payload.get("flags", 0)
    if "flags" in body and body["flags"] is not None:
        flags = (flags & ~(1 << 2)) | (int(body["flags"]) & (1 << 2))  # only SUPPRESS_EMBEDS is editable
    payload["flags"] = flags & ~FLAG_LOADING
    payload["edited_timestamp"] = iso_now()


#: A custom emoji as the reaction routes take it: ``name:id`` (discord.py sends ``Emoji.name:Emoji.id``).
_CUSTOM_EMOJI = re.compile(r"[A-Za-z0-9_]{1,32}:[0-9]{1,20}")


def is_reaction_emoji(key: str) -> bool:
    """What Discord takes as a reaction: one unicode emoji (``👍``, ``👍🏽``, ``🇯🇵``, a ZWJ sequence),
    recognised by the ``emoji`` package, or ``name:id`` of a custom emoji.

    The emulator's guilds have no custom emoji of their own, so any well-formed ``name:id`` is taken
    (Discord also checks that the bot can use that emoji id).
    """
    return bool(_CUSTOM_EMOJI.fullmatch(key)) or unicode_emoji.is_emoji(key)


def unknown_emoji() -> ApiError:
    return ApiError(400, 10014, "Unknown Emoji")


#: Discord's limits on a guild channel's editable fields.
CHANNEL_NAME_MAX = 100
CHANNEL_TOPIC_MAX = 1024
SLOWMODE_MAX = 21600


def validate_channel_edit(channel: Channel, body: dict[str, Any]) -> dict[str, Any]:
    """The changes a Modify Channel body asks for, checked as Discord does; nothing is applied.

    Taken: ``name`` (1-100 characters), ``topic`` (text channels, up to 1024 characters, null clears
    it), ``nsfw``, ``rate_limit_per_user`` (0-21600 s). Other fields are ignored.
    """
    changes: dict[str, Any] = {}
    if "name" in body:
        name = body["name"]
        if name is None:
            raise form_error("name", "BASE_TYPE_REQUIRED", "This field is required")
        if not isinstance(name, str):
            raise form_error("name", "BASE_TYPE_STRING", "Must be a string.")
        if not 1 <= len(name) <= CHANNEL_NAME_MAX:
            raise form_error(
                "name", "BASE_TYPE_BAD_LENGTH", f"Must be between 1 and {CHANNEL_NAME_MAX} in length."
            )
        changes["name"] = name
    if "topic" in body and channel.type == GUILD_TEXT:
        topic = body["topic"]
        _check_len(topic, CHANNEL_TOPIC_MAX, "topic")
        changes["topic"] = topic or None
    if "nsfw" in body:
        if not isinstance(body["nsfw"], bool):
            raise form_error("nsfw", "BASE_TYPE_BOOLEAN", "Must be either true or false.")
        changes["nsfw"] = body["nsfw"]
    if "rate_limit_per_user" in body:
        slowmode = body["rate_limit_per_user"]
        if not isinstance(slowmode, int) or isinstance(slowmode, bool):
            raise form_error("rate_limit_per_user", "NUMBER_TYPE_COERCE", "Value is not int.")
        if slowmode < 0:
            raise form_error(
                "rate_limit_per_user", "NUMBER_TYPE_MIN", "int value should be greater than or equal to 0."
            )
        if slowmode > SLOWMODE_MAX:
            raise form_error(
                "rate_limit_per_user",
                "NUMBER_TYPE_MAX",
                f"int value should be less than or equal to {SLOWMODE_MAX}.",
            )
        changes["rate_limit_per_user"] = slowmode
    return changes


def emoji_payload(key: str) -> dict[str, Any]:
    """The partial emoji of a reaction key (``"name"`` or ``"name:id"`` for a custom one)."""
    name, _, eid = key.partition(":")
    return {"id": eid or None, "name": name}


def reaction_payloads(message: StoredMessage, bot_id: int) -> list[dict[str, Any]]:
    result = []
    for key, users in message.reactions.items():
        if not users:
            continue
        result.append(
            {
                "count": len(users),
                "count_details": {"burst": 0, "normal": len(users)},
                "me": bot_id in users,
                "me_burst": False,
                "burst": False,
                "burst_colors": [],
                "emoji": emoji_payload(key),
            }
        )
    return result
