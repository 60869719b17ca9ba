"""Interaction callbacks and webhook execution (channel webhooks and interaction followups share a route)."""

from __future__ import annotations

import time
from typing import Any

from discord_emulator.core import messages as msgs
from discord_emulator.core.messages import ApiError, form_error, not_found
from discord_emulator.core.models import FLAG_EPHEMERAL, FLAG_LOADING, Perm, StoredMessage, Webhook
from discord_emulator.transports.rest.base import Call, RestBase


class HookRoutes(RestBase):
    # -- interactions ------------------------------------------------------------------------------
    async def interaction_callback(self, call: Call) -> tuple[int, Any]:
        record = self.world.interaction_by_token(call.params["interaction_token"])
        if record is None or str(record.id) != call.params["interaction_id"]:
            raise not_found("interaction", 10062)
        if record.acknowledged:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        ack_timeout = self.host.interaction_ack_timeout
        if ack_timeout is not None and time.monotonic() - record.created_at > ack_timeout:
            raise not_found("interaction", 10062)
        body = call.body()
        kind = body.get("type")
        data = body.get("data") or {}
        channel = self.world.channels[record.channel_id]
        message: StoredMessage | None = None
        if kind == 4:
            attachments = msgs.attachment_payloads(self.world, self.host.url, channel.id, call.files)
            message = msgs.build_message(
                self.world, channel, self.world.bot, data, attachments=attachments, files=call.files,
                interaction=record.payload,
            )  # fmt: skip
        elif kind == 5:
            flags = FLAG_LOADING | (int(data.get("flags") or 0) & FLAG_EPHEMERAL)
            message = msgs.build_message(
                self.world,
                channel,
                self.world.bot,
                {},
                interaction=record.payload,
                require_content=False,
                flags=flags,
            )
        elif kind in (6, 7):
            # Component interactions: "original" is the message the component sits on.
            target = channel.messages.get(int(record.payload.get("message", {}).get("id", 0)))
            if target is None:
                raise ApiError(400, 40043, "Interaction has no message to update")
            record.original_message_id = target.id
            if kind == 7:
                msgs.apply_edit(target, data)
                await self.world.message_updated(target)
        elif kind == 8:
            choices = data.get("choices")
            if not isinstance(choices, list) or len(choices) > 25:
                raise form_error("choices", "BASE_TYPE_MAX_LENGTH", "Must be a list of 25 or fewer.")
            if record.choices is not None and not record.choices.done():
                record.choices.set_result(choices)
        elif kind == 9:
            record.payload["modal"] = data
        else:
            raise form_error("type", "BASE_TYPE_CHOICES", "Value must be an interaction callback type.")
        record.response_type = int(kind)
        interaction_info: dict[str, Any] = {"id": str(record.id), "type": record.type}
        resource: dict[str, Any] | None = None
        if message is not None:
            await self.world.post_message(message)
            record.original_message_id = message.id
            interaction_info.update(
                response_message_id=str(message.id),
                response_message_loading=message.loading,
                response_message_ephemeral=message.ephemeral,
            )
            resource = {"type": kind, "message": message.payload}
        if call.query.get("with_response") not in ("1", "true", "True"):
            return 204, None
        answer: dict[str, Any] = {"interaction": interaction_info}
        if resource is not None:
            answer["resource"] = resource
        elif kind in (6, 7, 9):
            answer["resource"] = {"type": kind}
        return 200, answer

    # -- webhooks (channel webhooks and interaction followups) -------------------------------------
    async def create_webhook(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        guild = self.world.guild_of(channel.id)
        if guild is None:
            raise ApiError(400, 50035, "Invalid Form Body")
        self._require(guild, Perm.MANAGE_WEBHOOKS)
        name = call.body().get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 80:
            raise form_error("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 80 in length.")
        webhook = self.world.new_webhook(channel.id, name, creator_id=self.world.bot.id)
        return 200, self.webhook_payload(webhook, with_token=True)

    async def channel_webhooks(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(self.world.guild_of(channel.id), Perm.MANAGE_WEBHOOKS)
        hooks = [w for w in self.world.webhooks.values() if w.channel_id == channel.id]
        return 200, [self.webhook_payload(w, with_token=True) for w in hooks]

    def webhook_payload(self, webhook: Webhook, *, with_token: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(webhook.id),
            "type": 1,
            "channel_id": str(webhook.channel_id),
            "guild_id": str(webhook.guild_id) if webhook.guild_id else None,
            "name": webhook.name,
            "avatar": None,
            "application_id": None,
        }
        if webhook.creator_id in self.world.users:
            data["user"] = self.world.users[webhook.creator_id].payload()
        if with_token:
            data["token"] = webhook.token
            data["url"] = f"{self.host.url}/api/webhooks/{webhook.id}/{webhook.token}"
        return data

    def _webhook(self, call: Call) -> Webhook:
        webhook = self.world.webhooks.get(call.id("webhook_id", "Webhook", 10015))
        token = call.params.get("webhook_token")
        if webhook is None or (token is not None and token != webhook.token):
            raise not_found("Webhook", 10015)
        return webhook

    def _is_interaction_hook(self, call: Call) -> bool:
        return call.params["webhook_id"] == str(self.world.application_id) and "webhook_token" in call.params

    def _followup_record(self, call: Call) -> Any:
        record = self.world.interaction_by_token(call.params["webhook_token"])
        if record is None or time.monotonic() - record.created_at > 15 * 60:
            raise not_found("Webhook", 10015)
        return record

    async def get_webhook(self, call: Call) -> tuple[int, Any]:
        if "webhook_token" not in call.params and not self._authorised(call.headers):
            raise ApiError(401, 0, "401: Unauthorized")
        webhook = self._webhook(call)
        return 200, self.webhook_payload(webhook, with_token="webhook_token" not in call.params)

    async def execute_webhook(self, call: Call) -> tuple[int, Any]:
        wait = call.query.get("wait") in ("true", "1", "True")
        if self._is_interaction_hook(call):
            record = self._followup_record(call)
            if not record.acknowledged:
                raise not_found("Webhook", 10015)
            channel = self.world.channels[record.channel_id]
            attachments = msgs.attachment_payloads(self.world, self.host.url, channel.id, call.files)
            original = channel.messages.get(record.original_message_id or 0)
            if (
                record.response_type == 5
                and original is not None
                and original.loading
                and not record.followup_ids
            ):
                # Discord: the first followup after a deferral replaces the "thinking…" message.
                msgs.apply_edit(original, call.body(), attachments=attachments, files=call.files)
                record.followup_ids.append(original.id)
                await self.world.message_updated(original)
                return 200, original.payload
            body = call.body()
            message = msgs.build_message(
                self.world, channel, self.world.bot, body, attachments=attachments, files=call.files,
                interaction=record.payload,
            )  # fmt: skip
            await self.world.post_message(message)
            record.followup_ids.append(message.id)
            return 200, message.payload
        webhook = self._webhook(call)
        channel = self.world.channels[webhook.channel_id]
        body = call.body()
        author = self.world.webhook_author(webhook, body.get("username"))
        attachments = msgs.attachment_payloads(self.world, self.host.url, channel.id, call.files)
        message = msgs.build_message(
            self.world,
            channel,
            author,
            body,
            attachments=attachments,
            files=call.files,
            webhook_id=webhook.id,
        )
        await self.world.post_message(message)
        return (200, message.payload) if wait else (204, None)

    def _hook_message(self, call: Call) -> StoredMessage:
        raw = call.params["message_id"]
        if self._is_interaction_hook(call):
            record = self._followup_record(call)
            channel = self.world.channels[record.channel_id]
            mid = record.original_message_id if raw == "@original" else int(raw) if raw.isdigit() else None
            allowed = {record.original_message_id, *record.followup_ids}
            message = channel.messages.get(mid or 0) if mid in allowed else None
        else:
            webhook = self._webhook(call)
            channel = self.world.channels[webhook.channel_id]
            message = channel.messages.get(int(raw)) if raw.isdigit() else None
            if message is not None and message.webhook_id != webhook.id:
                message = None
        if message is None:
            raise not_found("Message", 10008)
        return message

    async def get_webhook_message(self, call: Call) -> tuple[int, Any]:
        return 200, self._hook_message(call).payload

    async def edit_webhook_message(self, call: Call) -> tuple[int, Any]:
        message = self._hook_message(call)
        attachments = msgs.attachment_payloads(self.world, self.host.url, message.channel_id, call.files)
        msgs.apply_edit(message, call.body(), attachments=attachments, files=call.files)
        await self.world.message_updated(message)
        return 200, message.payload

    async def delete_webhook_message(self, call: Call) -> tuple[int, Any]:
        message = self._hook_message(call)
        await self.world.delete_message(self.world.channels[message.channel_id], message)
        return 204, None
