"""The README and docs/ link only to files a clone of the repository has."""

from __future__ import annotations

import re

from ops_support import REPO

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_relative_link_in_the_docs_resolves_inside_the_repository() -> None:
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    checked = 0
    for page in pages:
        for target in LINK.findall(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+://", target):
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(REPO.resolve()), (
                f"{page.name} links outside the repository: {target}"
            )
            assert resolved.exists(), f"{page.name} links to a missing file: {target}"
            checked += 1
    assert checked > 5
    assert "../shared" not in (REPO / "README.md").read_text(encoding="utf-8")
