"""The talent directory and the forgiving matcher (examples + hypothesis for robustness)."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from comet.features.talents import (
    BRANCHES,
    Talent,
    TalentDataError,
    TalentDirectory,
    default_directory,
    edit_distance,
    main,
    normalize,
)

DIRECTORY = default_directory()


def test_bundled_file_covers_the_branches_and_generations() -> None:
    gens = {(t.branch, t.generation) for t in DIRECTORY.talents}
    for wanted in [
        ("JP", "0"),
        ("JP", "1"),
        ("JP", "2"),
        ("JP", "GAMERS"),
        ("JP", "3"),
        ("JP", "4"),
        ("JP", "5"),
        ("JP", "holoX"),
        ("EN", "Myth"),
        ("EN", "Promise"),
        ("EN", "Advent"),
        ("EN", "Justice"),
        ("ID", "AREA15"),
        ("ID", "holoro"),
        ("ID", "holoh3ro"),
        ("DEV_IS", "ReGLOSS"),
    ]:
        assert wanted in gens, wanted
    assert {t.branch for t in DIRECTORY.talents} <= set(BRANCHES)
    assert len({t.key for t in DIRECTORY.talents}) == len(DIRECTORY.talents)
    pekora = DIRECTORY.get("usada_pekora")
    assert pekora is not None and pekora.ja == "兎田ぺこら" and pekora.generation == "3"


@pytest.mark.parametrize(
    ("query", "key"),
    [
        ("ぺこら", "usada_pekora"),
        ("ペコラ", "usada_pekora"),  # katakana folds to hiragana
        ("ﾍﾟｺﾗ", "usada_pekora"),  # half-width katakana
        ("ｐｅｋｏｒａ", "usada_pekora"),  # full-width latin
        ("PEKORA", "usada_pekora"),
        ("usada pekora", "usada_pekora"),
        ("兎田ぺこら", "usada_pekora"),
        ("Peko", "usada_pekora"),  # nickname
        ("pekroa", "usada_pekora"),  # swapped letters
        ("Pekoraa", "usada_pekora"),  # one extra letter
        ("船長", "houshou_marine"),
        ("Houshou Marine", "houshou_marine"),
        ("Hoshou Marine", "houshou_marine"),  # common romanisation slip
        ("みこちゃん", "sakura_miko"),  # honorific dropped
        ("Towa-sama", "tokoyami_towa"),
        ("suis", "hoshimachi_suisei"),  # prefix
        ("Ina'nis", "ninomae_inanis"),
        ("usada_pekora", "usada_pekora"),  # the key (autocomplete values)
        ("アキ", "aki_rosenthal"),  # a word of a name written with ・
        ("AZKi", "azki"),
    ],
)
def test_match_finds_the_talent(query: str, key: str) -> None:
    result = DIRECTORY.match(query)
    assert result.talent is not None, (query, result)
    assert result.talent.key == key


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("Abyssgard", {"fuwawa_abyssgard", "mococo_abyssgard"}),
        ("FUWAMOCO", {"fuwawa_abyssgard", "mococo_abyssgard"}),
        ("shio", {"murasaki_shion", "shiori_novella"}),
    ],
)
def test_ambiguous_queries_list_the_candidates(query: str, keys: set[str]) -> None:
    result = DIRECTORY.match(query)
    assert result.ambiguous and not result.found
    assert {t.key for t in result.candidates} == keys


@pytest.mark.parametrize("query", ["", "   ", "!!!", "xyzzy", "Nobody Atall", "zz"])
def test_unknown_names_match_nothing(query: str) -> None:
    result = DIRECTORY.match(query)
    assert not result.found and not result.candidates


def test_normalize_and_edit_distance() -> None:
    assert normalize("Ｕｓａｄａ　Ｐｅｋｏｒａ") == "usadapekora"
    assert normalize("クロヱ") == "くろゑ"
    assert edit_distance("pekora", "pekroa") == 1
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("abc", "abcdef", limit=1) == 2


def test_suggest_ranks_prefixes_first_and_lists_all_for_empty_input() -> None:
    assert DIRECTORY.suggest("", limit=25) == list(DIRECTORY.talents[:25])
    top = DIRECTORY.suggest("pe")
    assert top[0].key == "usada_pekora"
    marine = DIRECTORY.suggest("まり")
    assert marine[0].key == "houshou_marine"
    assert DIRECTORY.suggest("pkor")[0].key == "usada_pekora"  # a typo while typing
    assert len(DIRECTORY.suggest("a", limit=5)) == 5


def test_exact_is_used_for_role_names() -> None:
    pekora = DIRECTORY.exact("Pekora")
    assert pekora is not None and pekora.key == "usada_pekora"
    assert DIRECTORY.exact("Abyssgard") is None  # two talents share it
    assert DIRECTORY.exact("Pekor") is None  # no prefix / typo matching for roles


def test_display_per_locale() -> None:
    pekora = DIRECTORY.get("usada_pekora")
    assert pekora is not None
    assert pekora.display("ja") == "兎田ぺこら (Usada Pekora)"
    assert pekora.display("en") == "Usada Pekora (兎田ぺこら)"
    azki = DIRECTORY.get("azki")
    assert azki is not None and azki.display("en") == "AZKi"


def test_bad_files_are_reported_with_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "talents.toml"
    bad.write_text('[[talent]]\nkey = "a"\nen = "A"\nja = "あ"\nbranch = "XX"\ngeneration = "1"\n')
    with pytest.raises(TalentDataError, match=r"talent #1 \(a\).*branch"):
        TalentDirectory.load(bad)
    bad.write_text('[[talent]]\nkey = "a"\nen = "A"\n')
    with pytest.raises(TalentDataError, match='"ja"'):
        TalentDirectory.load(bad)
    bad.write_text('[[talent]]\nkey = "a"\nen = "A\n')
    with pytest.raises(TalentDataError, match="line"):
        TalentDirectory.load(bad)
    good = '[[talent]]\nkey = "x"\nen = "X Y"\nja = "えっくす"\nbranch = "JP"\ngeneration = "1"\n'
    bad.write_text(good + good)
    with pytest.raises(TalentDataError, match="used twice"):
        TalentDirectory.load(bad)


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check"]) == 0
    assert "talents" in capsys.readouterr().out
    broken = tmp_path / "broken.toml"
    broken.write_text("[[talent]]\nkey = 1\n")
    assert main(["check", str(broken)]) == 1
    assert "talent #1" in capsys.readouterr().err


# -- hypothesis ---------------------------------------------------------------------------------

ALIASES = [(t, name) for t in DIRECTORY.talents for name in (t.en, t.ja, *t.nicknames)]


def _variant(text: str, data: st.DataObject) -> str:
    """The same name typed differently: case, full width, katakana<->hiragana, spaces."""
    out = []
    for ch in text:
        choice = data.draw(st.integers(0, 3))
        if choice == 1 and ch.isascii() and ch.isalpha():
            ch = ch.swapcase()
        elif choice == 2 and "!" <= ch <= "~":
            ch = chr(ord(ch) + 0xFEE0)  # full-width form
        elif choice == 3 and "\u3041" <= ch <= "\u3096":
            ch = chr(ord(ch) + 0x60)  # hiragana -> katakana
        out.append(ch)
    return data.draw(st.sampled_from(["", " ", "　"])) + "".join(out)


@settings(max_examples=200, deadline=None)
@given(pick=st.sampled_from(ALIASES), data=st.data())
def test_any_spelling_of_a_name_finds_its_talent(pick: tuple[Talent, str], data: st.DataObject) -> None:
    talent, name = pick
    result = DIRECTORY.match(_variant(name, data))
    assert result.talent == talent or talent in result.candidates


@settings(max_examples=200, deadline=None)
@given(pick=st.sampled_from([a for a in ALIASES if len(normalize(a[1])) >= 5]), data=st.data())
def test_one_typo_still_offers_the_talent(pick: tuple[Talent, str], data: st.DataObject) -> None:
    talent, name = pick
    folded = normalize(name)
    index = data.draw(st.integers(0, len(folded) - 1))
    kind = data.draw(st.sampled_from(["drop", "double", "replace"]))
    if kind == "drop":
        typo = folded[:index] + folded[index + 1 :]
    elif kind == "double":
        typo = folded[:index] + folded[index] + folded[index:]
    else:
        typo = folded[:index] + ("x" if folded[index] != "x" else "q") + folded[index + 1 :]
    result = DIRECTORY.match(typo)
    assert (
        result.talent == talent
        or talent in result.candidates
        or (
            # the typo turned it into another talent's exact name: a fair answer
            result.via in ("exact", "honorific")
        )
    )


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_random_input_never_breaks_the_matcher(text: str) -> None:
    result = DIRECTORY.match(text)
    assert not (result.found and result.candidates)
    assert len(result.candidates) != 1
    suggestions = DIRECTORY.suggest(text, limit=25)
    assert len(suggestions) <= 25
    assert unicodedata.normalize("NFKC", normalize(text)) == normalize(text)
