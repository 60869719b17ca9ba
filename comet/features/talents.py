"""The hololive talent directory (``comet/data/talents.toml``) and a forgiving name matcher.

Fans type names every way: 「ぺこら」, 「ペコラ」, ``ｐｅｋｏｒａ``, ``PEKORA``, ``Usada Pekora``,
``peko``, ``pekroa``. Everything is first normalised (NFKC folds full/half width, ``casefold``
folds case, katakana folds to hiragana, spaces and punctuation are dropped), then matched in
stages, stopping at the first stage that finds something:

1. an exact name, word of a name, nickname or key;
2. the same with an honorific dropped (``みこちゃん``, ``Towa-sama``);
3. the start of a name (``suis`` -> Suisei), from two characters on;
4. a small typo: optimal-string-alignment edit distance 1 (2 from six characters on).

When a stage finds several talents, the result is ambiguous and lists them so the bot can ask
back (``Abyssgard`` -> Fuwawa or Mococo). Check the data file with ``python -m comet.features.talents check``.
"""

from __future__ import annotations

import sys
import tomllib
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "talents.toml"
BRANCHES = ("JP", "EN", "ID", "DEV_IS")
HONORIFICS = tuple(
    sorted(
        {"ちゃん", "さん", "さま", "様", "くん", "君", "たん", "ちゃま", "chan", "san", "sama", "kun", "tan"},
        key=len,
        reverse=True,
    )
)
MAX_CANDIDATES = 8

_KATAKANA_FIRST, _KATAKANA_LAST = 0x30A1, 0x30F6  # ァ .. ヶ, each 0x60 above its hiragana


def normalize(text: str) -> str:
    """Fold width, case and katakana/hiragana; keep only letters and digits."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    out: list[str] = []
    for ch in folded:
        code = ord(ch)
        if _KATAKANA_FIRST <= code <= _KATAKANA_LAST:
            ch = chr(code - 0x60)
        if unicodedata.category(ch)[0] in "LN":  # letters (incl. ー, category Lm) and digits
            out.append(ch)
    return "".join(out)


def edit_distance(a: str, b: str, limit: int | None = None) -> int:
    """Optimal string alignment distance (a swap of neighbours counts as one edit).

    With ``limit``, returns ``limit + 1`` as soon as the distance is known to exceed it.
    """
    if a == b:
        return 0
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if limit is not None and min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


class TalentDataError(ValueError):
    """The talents file is malformed; the message says where."""


@dataclass(frozen=True)
class Talent:
    key: str
    en: str
    ja: str
    branch: str
    generation: str
    nicknames: tuple[str, ...] = ()
    graduated: bool = False

    def name(self, locale: str) -> str:
        """The name in ``locale`` (``ja`` or ``en``)."""
        return self.ja if locale == "ja" else self.en

    def display(self, locale: str) -> str:
        """``兎田ぺこら (Usada Pekora)`` in Japanese, ``Usada Pekora (兎田ぺこら)`` in English."""
        first, second = (self.ja, self.en) if locale == "ja" else (self.en, self.ja)
        return first if first == second else f"{first} ({second})"

    def names(self) -> tuple[str, ...]:
        """Every name the talent answers to, as written (full names, words of them, nicknames, key)."""
        words = [w for w in self.en.split() if len(w) > 1]
        words += [w for part in self.ja.split("・") for w in part.split() if w != self.ja]
        return (self.en, self.ja, *words, *self.nicknames, self.key)


@dataclass(frozen=True)
class MatchResult:
    """``talent`` when one talent matched; ``candidates`` (2+) when the query was ambiguous."""

    query: str
    talent: Talent | None = None
    candidates: tuple[Talent, ...] = ()
    via: Literal["exact", "honorific", "prefix", "typo", "none"] = "none"

    @property
    def found(self) -> bool:
        return self.talent is not None

    @property
    def ambiguous(self) -> bool:
        return self.talent is None and len(self.candidates) > 1


@dataclass
class TalentDirectory:
    talents: tuple[Talent, ...]
    _by_key: dict[str, Talent] = field(init=False, repr=False)
    _aliases: dict[str, list[Talent]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_key = {t.key: t for t in self.talents}
        self._aliases = {}
        for talent in self.talents:
            for name in talent.names():
                alias = normalize(name)
                if alias:
                    bucket = self._aliases.setdefault(alias, [])
                    if talent not in bucket:
                        bucket.append(talent)

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path | None = None) -> TalentDirectory:
        file = Path(path) if path is not None else DEFAULT_PATH
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise TalentDataError(f"{file}: {exc}") from exc
        return cls(parse_talents(data.get("talent"), source=str(file)))

    # -- lookups ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.talents)

    def get(self, key: str) -> Talent | None:
        return self._by_key.get(key)

    def exact(self, name: str) -> Talent | None:
        """The one talent whose name (any form) is exactly ``name`` after normalising, else None."""
        hits = self._aliases.get(normalize(name), [])
        return hits[0] if len(hits) == 1 else None

    def match(self, query: str) -> MatchResult:
        q = normalize(query)
        if not q:
            return MatchResult(query)
        hits = self._aliases.get(q)
        if hits:
            return self._result(query, hits, "exact")
        for suffix in HONORIFICS:
            if q.endswith(suffix) and len(q) > len(suffix):
                hits = self._aliases.get(q[: -len(suffix)])
                if hits:
                    return self._result(query, hits, "honorific")
        if len(q) >= 2:
            prefixed = self._ordered(
                t for alias, ts in self._aliases.items() if alias.startswith(q) for t in ts
            )
            if prefixed:
                return self._result(query, prefixed, "prefix")
        if len(q) >= 3:
            limit = 1 if len(q) < 6 else 2
            best: dict[str, int] = {}
            for alias, ts in self._aliases.items():
                if len(alias) < 3:
                    continue
                distance = edit_distance(q, alias, limit)
                if distance <= limit:
                    for t in ts:
                        best[t.key] = min(best.get(t.key, distance), distance)
            if best:
                closest = min(best.values())
                return self._result(
                    query, self._ordered(self._by_key[k] for k, d in best.items() if d == closest), "typo"
                )
        return MatchResult(query)

    def suggest(self, query: str, limit: int = 25) -> list[Talent]:
        """Talents for an autocomplete list, best first (all of them, in file order, for no input)."""
        q = normalize(query)
        if not q:
            return list(self.talents[:limit])
        order = {t.key: i for i, t in enumerate(self.talents)}
        scores: dict[str, tuple[int, int]] = {}
        for alias, ts in self._aliases.items():
            if alias == q:
                score = (0, 0)
            elif alias.startswith(q):
                score = (1, 0)
            elif q in alias:
                score = (2, 0)
            elif len(q) >= 3 and any(
                edit_distance(q, alias[:n], 1) <= 1 for n in (len(q) - 1, len(q), len(q) + 1)
            ):
                # A typo in what has been typed so far; people rarely get the first letter wrong.
                score = (3, 0 if alias[0] == q[0] else 1)
            else:
                continue
            for t in ts:
                scores[t.key] = min(scores.get(t.key, score), score)
        ranked = sorted(scores, key=lambda k: (scores[k], order[k]))
        return [self._by_key[k] for k in ranked[:limit]]

    # -- helpers ------------------------------------------------------------------------------

    def _ordered(self, talents: Iterable[Talent]) -> list[Talent]:
        wanted = {t.key for t in talents}
        return [t for t in self.talents if t.key in wanted]

    @staticmethod
    def _result(
        query: str, talents: Sequence[Talent], via: Literal["exact", "honorific", "prefix", "typo"]
    ) -> MatchResult:
        if len(talents) == 1:
            return MatchResult(query, talent=talents[0], via=via)
        return MatchResult(query, candidates=tuple(talents[:MAX_CANDIDATES]), via=via)


def parse_talents(entries: Any, *, source: str = "talents") -> tuple[Talent, ...]:
    """Validate the parsed ``[[talent]]`` tables; raises TalentDataError naming the bad entry."""
    if not isinstance(entries, list) or not entries:
        raise TalentDataError(f"{source}: no [[talent]] entries found")
    talents: list[Talent] = []
    seen: set[str] = set()
    allowed = {"key", "en", "ja", "nicknames", "branch", "generation", "graduated"}
    for number, entry in enumerate(entries, start=1):
        where = f"{source}: talent #{number}"
        if not isinstance(entry, dict):
            raise TalentDataError(f"{where}: expected a [[talent]] table")
        where += f" ({entry.get('key') or entry.get('en') or '?'})"
        unknown = set(entry) - allowed
        if unknown:
            raise TalentDataError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        for name in ("key", "en", "ja", "branch", "generation"):
            value = entry.get(name)
            if not isinstance(value, str) or not value.strip():
                raise TalentDataError(f'{where}: "{name}" must be a non-empty text in double quotes')
        key = entry["key"]
        if key != key.lower() or not key.replace("_", "").isalnum() or not key.isascii():
            raise TalentDataError(f"{where}: key {key!r} must be lower case letters, digits and _")
        if key in seen:
            raise TalentDataError(f"{where}: key {key!r} is used twice")
        seen.add(key)
        if entry["branch"] not in BRANCHES:
            raise TalentDataError(f"{where}: branch must be one of {', '.join(BRANCHES)}")
        nicknames = entry.get("nicknames", [])
        if not isinstance(nicknames, list) or not all(isinstance(n, str) and n.strip() for n in nicknames):
            raise TalentDataError(f'{where}: nicknames must be a list of texts, like ["Peko", "ぺこら"]')
        graduated = entry.get("graduated", False)
        if not isinstance(graduated, bool):
            raise TalentDataError(f"{where}: graduated must be true or false")
        talents.append(
            Talent(
                key=key,
                en=entry["en"].strip(),
                ja=entry["ja"].strip(),
                branch=entry["branch"],
                generation=entry["generation"].strip(),
                nicknames=tuple(n.strip() for n in nicknames),
                graduated=graduated,
            )
        )
    return tuple(talents)


_default: TalentDirectory | None = None


def default_directory() -> TalentDirectory:
    """The bundled directory, loaded once per process."""
    global _default
    if _default is None:
        _default = TalentDirectory.load()
    return _default


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m comet.features.talents check [FILE]`` validates a talents file; ``match NAME``
    tries a name."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in {"check", "match"}:
        print("usage: python -m comet.features.talents check [FILE] | match NAME", file=sys.stderr)
        return 2
    if args[0] == "check":
        try:
            directory = TalentDirectory.load(args[1] if len(args) > 1 else None)
        except (TalentDataError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"ok: {len(directory)} talents")
        return 0
    result = default_directory().match(" ".join(args[1:]))
    if result.talent is not None:
        print(f"{result.talent.key}: {result.talent.display('en')} [{result.via}]")
    elif result.candidates:
        print("ambiguous: " + ", ".join(t.key for t in result.candidates))
    else:
        print("no match")
    return 0 if result.found else 1


if __name__ == "__main__":
    raise SystemExit(main())
