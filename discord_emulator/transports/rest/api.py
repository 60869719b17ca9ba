"""REST under ``/api/v10`` (and ``/api`` without a version, as Discord's webhook URLs use).

Every JSON answer is sent with ``Content-Type: application/json`` exactly: discord.py parses a body as
JSON only on that exact header value (aiohttp's ``json_response`` appends ``; charset=utf-8``).
Every call is recorded, unknown ones too (404 with a JSON error). Every answer to a known route
carries Discord's per-route rate-limit headers (:mod:`discord_emulator.buckets`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any

from aiohttp import BodyPartReader, web

from discord_emulator.core.messages import ApiError, not_found
from discord_emulator.core.payloads import application_payload
from discord_emulator.core.record import UNKNOWN_ROUTE, RecordedRequest
from discord_emulator.faults import RestFault
from discord_emulator.transports.rest.base import Call, RestHost, json_response
from discord_emulator.transports.rest.guilds import GuildRoutes
from discord_emulator.transports.rest.hooks import HookRoutes
from discord_emulator.transports.rest.messages import MessageRoutes
from discord_emulator.transports.rest.routing import Router

log = logging.getLogger(__name__)


def _strip_api_prefix(path: str) -> str | None:
    if not path.startswith("/api/"):
        return None
    rest = path[4:]
    if rest.startswith("/v") and len(rest) > 2:
        slash = rest.find("/", 1)
        version = rest[2:slash] if slash != -1 else rest[2:]
        if version.isdigit():
            rest = rest[slash:] if slash != -1 else "/"
    return rest


class RestApi(MessageRoutes, GuildRoutes, HookRoutes):
    def __init__(self, host: RestHost) -> None:
        super().__init__(host)
        self.router = Router()
        self._register()

    # -- plumbing ----------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = request.method
        path = _strip_api_prefix(request.path) or request.path
        route, params = self.router.match(method, path)
        template = route.template if route else UNKNOWN_ROUTE
        body = b""
        parsed: Any = None
        files: list[tuple[str, bytes]] = []
        reason = request.headers.get("X-Audit-Log-Reason")
        if reason:
            reason = urllib.parse.unquote(reason)
        headers: Mapping[str, str] | None = None
        try:
            if request.content_type.startswith("multipart/"):
                body, parsed, files = await self._read_multipart(request)
            elif request.body_exists:
                body = await request.read()
                if body:
                    try:
                        parsed = json.loads(body)
                    except ValueError:
                        raise ApiError(400, 50109, "The request body contains invalid JSON.") from None
            if route is None:
                raise ApiError(404, 0, "404: Not Found")
            if not template.startswith(("/webhooks/", "/interactions/")) and not self._authorised(
                request.headers
            ):
                raise ApiError(401, 0, "401: Unauthorized")
            faults = self.host.faults
            if faults.active:
                delay, fault = faults.take(method, template, path)
                if delay:
                    await asyncio.sleep(delay)
                if fault is not None:
                    raise _FaultAnswer.of(fault)
            limits = faults.buckets.take(method, template, params)
            headers = limits.headers
            if limits.retry_after is not None:
                raise _FaultAnswer("rate_limit", 429, limits.retry_after, False, "user", headers)
            call = Call(method, path, params, request.query, parsed, files, reason, request.headers)
            status, out = await route.handler(call)
        except ApiError as exc:
            status, out = exc.status, exc.body()
        except _FaultAnswer as fault:
            status, out, headers = fault.answer()
        except Exception:
            log.exception("emulator: %s %s failed", method, path)
            status, out = 500, {"message": "500: Internal Server Error", "code": 0}
        now = time.monotonic()
        record = RecordedRequest(method, path, template, body, status, now, dict(request.query), reason)
        self.host.requests.append(record)
        self.host.notify()
        return json_response(status, out, headers)

    async def _read_multipart(self, request: web.Request) -> tuple[bytes, Any, list[tuple[str, bytes]]]:
        reader = await request.multipart()
        payload: Any = None
        raw = b""
        files: list[tuple[str, bytes]] = []
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):  # nested multipart: not something Discord takes
                continue
            data = bytes(await part.read(decode=True))
            if part.name == "payload_json":
                raw = data
                try:
                    payload = json.loads(data)
                except ValueError:
                    raise ApiError(400, 50109, "The request body contains invalid JSON.") from None
            elif part.filename is not None:
                files.append((part.filename, data))
        return raw, payload, files

    # -- registry ----------------------------------------------------------------------------------
    def _register(self) -> None:
        add = self.router.add
        add("GET", "/users/@me", self.get_me)
        add("GET", "/users/{user_id}", self.get_user)
        add("POST", "/users/@me/channels", self.create_dm)
        add("GET", "/oauth2/applications/@me", self.get_application)
        add("GET", "/applications/@me", self.get_application)
        add("GET", "/gateway", self.get_gateway)
        add("GET", "/gateway/bot", self.get_gateway_bot)
        add("GET", "/channels/{channel_id}", self.get_channel)
        add("PATCH", "/channels/{channel_id}", self.edit_channel)
        add("GET", "/channels/{channel_id}/messages", self.history)
        add("POST", "/channels/{channel_id}/messages", self.create_message)
        add("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message)
        add("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message)
        add("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message)
        add("POST", "/channels/{channel_id}/messages/bulk-delete", self.bulk_delete)
        add("POST", "/channels/{channel_id}/typing", self.typing)
        reactions = "/channels/{channel_id}/messages/{message_id}/reactions"
        add("PUT", reactions + "/{emoji}/@me", self.add_own_reaction)
        add("DELETE", reactions + "/{emoji}/@me", self.remove_own_reaction)
        add("DELETE", reactions + "/{emoji}/{user_id}", self.remove_reaction)
        add("GET", reactions + "/{emoji}", self.get_reactions)
        add("DELETE", reactions + "/{emoji}", self.clear_emoji_reactions)
        add("DELETE", reactions, self.clear_reactions)
        add("POST", "/channels/{channel_id}/webhooks", self.create_webhook)
        add("GET", "/channels/{channel_id}/webhooks", self.channel_webhooks)
        add("GET", "/guilds/{guild_id}", self.get_guild)
        add("GET", "/guilds/{guild_id}/channels", self.guild_channels)
        add("GET", "/guilds/{guild_id}/roles", self.guild_roles)
        add("GET", "/guilds/{guild_id}/members", self.list_members)
        add("GET", "/guilds/{guild_id}/members/search", self.search_members)
        add("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member)
        add("PATCH", "/guilds/{guild_id}/members/{user_id}", self.edit_member)
        add("DELETE", "/guilds/{guild_id}/members/{user_id}", self.kick)
        add("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", self.add_role)
        add("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", self.remove_role)
        add("GET", "/guilds/{guild_id}/bans", self.list_bans)
        add("GET", "/guilds/{guild_id}/bans/{user_id}", self.get_ban)
        add("PUT", "/guilds/{guild_id}/bans/{user_id}", self.ban)
        add("DELETE", "/guilds/{guild_id}/bans/{user_id}", self.unban)
        for base in ("/applications/{application_id}", "/applications/{application_id}/guilds/{guild_id}"):
            add("GET", base + "/commands", self.get_commands)
            add("PUT", base + "/commands", self.put_commands)
            add("POST", base + "/commands", self.upsert_command)
            add("GET", base + "/commands/{command_id}", self.get_command)
            add("PATCH", base + "/commands/{command_id}", self.edit_command)
            add("DELETE", base + "/commands/{command_id}", self.delete_command)
        add("POST", "/interactions/{interaction_id}/{interaction_token}/callback", self.interaction_callback)
        hook = "/webhooks/{webhook_id}/{webhook_token}"
        add("GET", "/webhooks/{webhook_id}", self.get_webhook)
        add("GET", hook, self.get_webhook)
        add("POST", hook, self.execute_webhook)
        add("GET", hook + "/messages/{message_id}", self.get_webhook_message)
        add("PATCH", hook + "/messages/{message_id}", self.edit_webhook_message)
        add("DELETE", hook + "/messages/{message_id}", self.delete_webhook_message)

    # -- users / application / gateway -------------------------------------------------------------
    async def get_me(self, call: Call) -> tuple[int, Any]:
        return 200, dict(self.world.bot.payload(), verified=True, mfa_enabled=False, flags=0, locale="ja")

    async def get_user(self, call: Call) -> tuple[int, Any]:
        user = self.world.users.get(call.id("user_id", "User", 10013))
        if user is None:
            raise not_found("User", 10013)
        return 200, user.payload()

    async def get_application(self, call: Call) -> tuple[int, Any]:
        return 200, application_payload(self.world)

    async def get_gateway(self, call: Call) -> tuple[int, Any]:
        return 200, {"url": self.host.gateway_url}

    async def get_gateway_bot(self, call: Call) -> tuple[int, Any]:
        return 200, {
            "url": self.host.gateway_url,
            "shards": self.host.shard_count,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14_400_000,
                "max_concurrency": 1,
            },
        }


class _FaultAnswer(Exception):
    @classmethod
    def of(cls, fault: RestFault) -> _FaultAnswer:
        return cls(fault.kind, fault.status, fault.retry_after, fault.is_global, fault.scope)

    def __init__(
        self,
        kind: str,
        status: int,
        retry_after: float,
        is_global: bool,
        scope: str,
        limit_headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(kind)
        self.limit_headers = limit_headers or {}
        self.scope = scope
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.is_global = is_global

    def answer(self) -> tuple[int, Any, Mapping[str, str] | None]:
        if self.kind == "rate_limit":
            # discord.py retries a 429 only with a Via header (else it assumes a Cloudflare ban).
            headers = {
                **self.limit_headers,
                "Via": "1.1 google",
                "Retry-After": str(max(1, round(self.retry_after))),
                "X-RateLimit-Scope": self.scope,
            }
            if self.is_global:
                headers["X-RateLimit-Global"] = "true"
            body = {
                "message": "You are being rate limited.",
                "retry_after": self.retry_after,
                "global": self.is_global,
            }
            return 429, body, headers
        if self.kind == "forbidden":
            return 403, {"message": "Missing Permissions", "code": 50013}, None
        return self.status, {"message": f"{self.status}: Server Error", "code": 0}, None
