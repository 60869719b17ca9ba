"""The one JSON encoder of every answer, frame and control reply: compact and UTF-8 as Discord's,
built once (``json.dumps`` with arguments builds a new encoder on every call)."""

from __future__ import annotations

import json

dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
