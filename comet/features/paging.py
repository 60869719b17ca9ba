"""Long text as Discord messages: pages of at most ``PAGE_LIMIT`` characters in code fences, shared
by the owner tools (``debug`` output, reload reports)."""

from __future__ import annotations

#: Longest message body we send (Discord's limit is 2000; the rest is room for the code fence).
PAGE_LIMIT = 1900
#: More pages than this and the output goes out as a file instead.
MAX_PAGES = 4


def paginate(text: str, limit: int) -> list[str]:
    """Split ``text`` into chunks of at most ``limit`` characters, at line ends where possible."""
    pages: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                pages.append(current)
                current = ""
            pages.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            pages.append(current)
            current = ""
        current += line
    if current or not pages:
        pages.append(current)
    return [p.rstrip("\n") or "\u200b" for p in pages]


def fence(text: str) -> str:
    # A ``` inside the output would end the block early; a zero-width space defuses it.
    return "```\n" + text.replace("```", "`\u200b`\u200b`") + "\n```"
