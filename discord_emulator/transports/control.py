"""The control API (``/_control``) for drivers in another process: inject messages, interactions and
faults, read the record and what users see. JSON in and out; bad input -> 400 {"error": reason}."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from discord_emulator.core.encoding import dumps
from discord_emulator.core.record import select

if TYPE_CHECKING:
    from discord_emulator.server import Emulator


class BadInput(Exception):
    pass


def _reply(body: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=dumps(body).encode(), content_type="application/json")


def _int(body: dict[str, Any], key: str) -> int:
    if key not in body:
        raise BadInput(f"missing field {key!r}")
    value = body[key]
    if isinstance(value, bool):
        raise BadInput(f"{key!r} must be an integer id")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadInput(f"{key!r} must be an integer id") from None


def _float(body: dict[str, Any], key: str, default: float | None = None) -> float:
    value = body.get(key, default)
    if value is None:
        raise BadInput(f"missing field {key!r}")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadInput(f"{key!r} must be a number")
    try:
        return float(value)
    except ValueError:
        raise BadInput(f"{key!r} must be a number") from None


def _opt_int(body: dict[str, Any], key: str, default: int | None = None) -> int | None:
    if body.get(key) is None:
        return default
    return _int(body, key)


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise BadInput(f"{key!r} must be a string")
    return value


Handler = Callable[[web.Request], Awaitable[web.Response]]


def _guarded(handler: Callable[[web.Request], Awaitable[Any]]) -> Handler:
    async def wrapper(request: web.Request) -> web.Response:
        try:
            return _reply(await handler(request))
        except BadInput as exc:
            return _reply({"error": str(exc)}, 400)
        except KeyError as exc:
            return _reply({"error": f"unknown: {exc.args[0] if exc.args else exc}"}, 400)
        except ValueError as exc:
            return _reply({"error": str(exc)}, 400)
        except PermissionError as exc:
            return _reply({"error": str(exc)}, 403)
        except TimeoutError as exc:
            return _reply({"error": str(exc)}, 504)

    return wrapper


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        raise BadInput("malformed JSON body") from None
    if not isinstance(body, dict):
        raise BadInput("body must be a JSON object")
    return body


class ControlApi:
    def __init__(self, emu: Emulator) -> None:
        self.emu = emu

    def register(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/_control/messages", _guarded(self.post_message))
        r.add_post("/_control/interactions", _guarded(self.post_interaction))
        r.add_post("/_control/autocomplete", _guarded(self.post_autocomplete))
        r.add_post("/_control/reactions", _guarded(self.post_reaction))
        r.add_post("/_control/faults", _guarded(self.post_fault))
        r.add_post("/_control/guilds", _guarded(self.post_guild))
        r.add_post("/_control/members", _guarded(self.post_member))
        r.add_post("/_control/webhooks", _guarded(self.post_webhook))
        r.add_post("/_control/wait-reply", _guarded(self.wait_reply))
        r.add_post("/_control/load", _guarded(self.post_load))
        r.add_get("/_control/requests", _guarded(self.get_requests))
        r.add_get("/_control/channels/{channel_id}/messages", _guarded(self.get_channel_messages))
        r.add_get("/_control/state", _guarded(self.get_state))
        r.add_route("*", "/_control/{tail:.*}", _guarded(self.unknown))

    async def unknown(self, request: web.Request) -> Any:
        raise BadInput(f"unknown control command: {request.method} {request.path}")

    async def post_message(self, request: web.Request) -> Any:
        body = await _json_body(request)
        return await self.emu.send_message(
            _int(body, "channel_id"), _int(body, "author_id"), _str(body, "content")
        )

    async def post_interaction(self, request: web.Request) -> Any:
        body = await _json_body(request)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadInput("'options' must be an object")
        subcommand = body.get("subcommand")
        if subcommand is not None and not isinstance(subcommand, str):
            raise BadInput("'subcommand' must be a string")
        return await self.emu.send_slash(
            _int(body, "channel_id"), _int(body, "author_id"), _str(body, "name"), options, subcommand
        )

    async def post_autocomplete(self, request: web.Request) -> Any:
        body = await _json_body(request)
        options = body.get("options") or {}
        if not isinstance(options, dict):
            raise BadInput("'options' must be an object")
        choices = await self.emu.send_autocomplete(
            _int(body, "channel_id"),
            _int(body, "author_id"),
            _str(body, "name"),
            focused=_str(body, "focused"),
            value=body.get("value", ""),
            options=options,
            timeout=_float(body, "timeout", 5.0),
        )
        return {"choices": choices}

    async def post_reaction(self, request: web.Request) -> Any:
        body = await _json_body(request)
        await self.emu.add_reaction(
            _int(body, "channel_id"), _int(body, "message_id"), _int(body, "user_id"), _str(body, "emoji")
        )
        return {"ok": True}

    async def post_guild(self, request: web.Request) -> Any:
        body = await _json_body(request)
        members = _opt_int(body, "members", 0) or 0
        if members < 0 or members > 100_000:
            raise BadInput("'members' must be between 0 and 100000")
        channels = _opt_int(body, "channels", 1) or 1
        if not 1 <= channels <= 500:
            raise BadInput("'channels' must be between 1 and 500")
        names = ["general"] + [f"channel-{i}" for i in range(1, channels)]
        gid = self.emu.add_guild(str(body.get("name") or "guild"), members, channels=names)
        guild = self.emu.world.guilds[gid]
        return {
            "guild_id": str(gid),
            "channel_ids": [str(c) for c in guild.channel_ids],
            "member_ids": [str(u) for u in guild.members if u != self.emu.world.bot.id],
        }

    async def post_load(self, request: web.Request) -> Any:
        from discord_emulator.load import run_load

        body = await _json_body(request)
        channel_ids = body.get("channel_ids")
        author_ids = body.get("author_ids")
        if not isinstance(channel_ids, list) or not isinstance(author_ids, list):
            raise BadInput("'channel_ids' and 'author_ids' must be lists of ids")
        try:
            channels = [int(c) for c in channel_ids]
            authors = [int(a) for a in author_ids]
        except (TypeError, ValueError):
            raise BadInput("ids must be integers") from None
        duration = _float(body, "duration", 3.0)
        if not 0 < duration <= 600:
            raise BadInput("'duration' must be in (0, 600] seconds")
        result = await run_load(
            self.emu,
            channel_ids=channels,
            author_ids=authors,
            in_flight=_opt_int(body, "in_flight", 16) or 16,
            duration=duration,
            content=str(body.get("content") or "!ping"),
        )
        return result.as_dict()

    async def post_member(self, request: web.Request) -> Any:
        body = await _json_body(request)
        roles = body.get("roles") or []
        if not isinstance(roles, list):
            raise BadInput("'roles' must be a list")
        uid = self.emu.add_member(_int(body, "guild_id"), _opt_int(body, "user_id"), body.get("name"), roles)
        return {"user_id": str(uid)}

    async def post_webhook(self, request: web.Request) -> Any:
        body = await _json_body(request)
        hook_id, token, url = self.emu.create_webhook(
            _int(body, "channel_id"), str(body.get("name") or "alerts")
        )
        return {"id": str(hook_id), "token": token, "url": url}

    async def wait_reply(self, request: web.Request) -> Any:
        body = await _json_body(request)
        after = body.get("after")
        if after is not None and not isinstance(after, dict | int | str):
            raise BadInput("'after' must be a message/interaction object or an id")
        if isinstance(after, str):
            after = _int(body, "after")
        reply = await self.emu.wait_for_reply(
            _int(body, "channel_id"), after=after, timeout=_float(body, "timeout", 5.0)
        )
        return _bot_message(reply)

    async def post_fault(self, request: web.Request) -> Any:
        body = await _json_body(request)
        fault = body.get("fault")
        faults = self.emu.faults
        shard = _opt_int(body, "shard")
        route = body.get("route")
        if route is not None and not isinstance(route, str):
            raise BadInput("'route' must be a string")
        count = _opt_int(body, "count", None)
        if fault == "drop_socket":
            return {"affected": faults.drop_socket(shard)}
        if fault == "reconnect":
            return {"affected": faults.reconnect(shard)}
        if fault == "invalid_session":
            return {"affected": faults.invalid_session(bool(body.get("resumable", False)), shard)}
        if fault == "silence":
            return {"affected": faults.silence_gateway(shard, bool(body.get("enabled", True)))}
        if fault == "slow_rest":
            faults.slow_rest(_float(body, "delay"), route, count)
        elif fault == "rate_limit":
            faults.rate_limit(
                _float(body, "retry_after"),
                route,
                count if "count" in body else 1,
                is_global=bool(body.get("global", False)),
                shared=bool(body.get("shared", False)),
            )
        elif fault == "route_limit":
            if route is None:
                raise BadInput("'route_limit' needs a 'route'")
            faults.limit_route(route, int(_float(body, "limit")), _float(body, "per"))
        elif fault == "server_error":
            faults.server_error(int(_float(body, "status", 500)), route, count if "count" in body else 1)
        elif fault == "forbidden":
            faults.forbidden(route, count if "count" in body else 1)
        elif fault == "clear":
            faults.clear()
        else:
            raise BadInput(f"unknown fault {fault!r}")
        return {"ok": True}

    async def get_requests(self, request: web.Request) -> Any:
        q = request.query
        try:
            limit = int(q.get("limit", "100"))
        except ValueError:
            raise BadInput("'limit' must be an integer") from None
        if limit < 0:
            raise BadInput("'limit' must be >= 0")
        chosen = select(self.emu.requests, route=q.get("route") or None, method=q.get("method") or None)
        chosen = chosen[-limit:] if limit else []
        return [
            {
                "method": r.method,
                "path": r.path,
                "route": r.route,
                "json": r.json,
                "status": r.status,
                "time": r.time,
                "query": r.query,
                "reason": r.reason,
            }
            for r in chosen
        ]

    async def get_channel_messages(self, request: web.Request) -> Any:
        try:
            channel_id = int(request.match_info["channel_id"])
        except ValueError:
            raise BadInput("channel id must be an integer") from None
        if channel_id not in self.emu.world.channels:
            raise BadInput(f"unknown channel {channel_id}")
        return [_bot_message(m) for m in self.emu.bot_messages(channel_id)]

    async def get_state(self, request: web.Request) -> Any:
        return self.emu.summary()


def _bot_message(message: Any) -> dict[str, Any]:
    data = asdict(message)
    data["files"] = [{"filename": name, "size": len(blob)} for name, blob in message.files]
    for key in ("id", "channel_id", "reference_id", "interaction_id", "webhook_id", "author_id"):
        if data[key] is not None:
            data[key] = str(data[key])
    return data
