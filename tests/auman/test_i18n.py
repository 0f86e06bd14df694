"""German first: a complete catalogue, German pages unless the user switches, an API that follows Accept-Language."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import pytest
from django.utils import translation

from tests.conftest import KAISERRING, REPO_ROOT, feature, geojson_line

CATALOGUE = REPO_ROOT / "locale" / "de" / "LC_MESSAGES" / "django.po"
# {city} and %(name)s style placeholders; "{{" and "%%" are escapes, not placeholders.
PLACEHOLDER = re.compile(r"(?<!\{)\{[A-Za-z_][A-Za-z0-9_]*\}(?!\})|%\([A-Za-z_][A-Za-z0-9_]*\)[sdif]")
NOT_COMPILED = "is the catalogue compiled? Run: manage.py compilemessages --ignore '.venv'"


@dataclass
class Entry:
    line: int
    flags: set[str] = field(default_factory=set)
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)

    @property
    def forms(self) -> list[str]:
        return [self.msgstr[index] for index in sorted(self.msgstr)]


def read_catalogue() -> list[Entry]:
    """The entries of the .po file, header and obsolete (#~) entries left out; plain Python, no polib."""
    entries: list[Entry] = []
    entry: Entry | None = None
    target: tuple[str, int] | None = None
    for number, raw in enumerate(CATALOGUE.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            entry, target = None, None
            continue
        if line.startswith("#~"):
            continue
        if entry is None:
            entry = Entry(line=number)
            entries.append(entry)
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif match := re.fullmatch(r"(msgid|msgid_plural|msgstr)(?:\[(\d+)\])?\s+(\".*\")", line):
            keyword, index, text = match.group(1), int(match.group(2) or 0), ast.literal_eval(match.group(3))
            target = (keyword, index)
            if keyword == "msgid":
                entry.msgid = text
            elif keyword == "msgid_plural":
                entry.msgid_plural = text
            else:
                entry.msgstr[index] = text
        elif line.startswith('"') and target is not None:
            keyword, index = target
            text = ast.literal_eval(line)
            if keyword == "msgid":
                entry.msgid += text
            elif keyword == "msgid_plural":
                entry.msgid_plural = (entry.msgid_plural or "") + text
            else:
                entry.msgstr[index] += text
        else:
            raise AssertionError(f"{CATALOGUE.name}:{number}: cannot read {raw!r}")
    return [entry for entry in entries if entry.msgid]


def placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


@pytest.fixture(autouse=True)
def _keep_the_active_language():
    """Requests activate their language in this thread; later tests must not inherit English from here."""
    with translation.override(translation.get_language()):
        yield


# --- The catalogue ----------------------------------------------------------------------------


def test_it_reads_a_catalogue_with_entries():
    entries = read_catalogue()
    assert len(entries) > 100, f"only {len(entries)} entries in {CATALOGUE}"
    assert any(entry.msgid == "Full closure" for entry in entries)


def test_it_has_no_header_marked_fuzzy():
    header = CATALOGUE.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "#, fuzzy" not in header
    assert '"Language: de\\n"' in header
    assert '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"' in header


def test_it_has_no_fuzzy_entries():
    fuzzy = [f"{CATALOGUE.name}:{e.line} {e.msgid!r}" for e in read_catalogue() if "fuzzy" in e.flags]
    assert not fuzzy, "\n".join(fuzzy)


def test_it_has_no_untranslated_entries():
    empty = [f"{CATALOGUE.name}:{e.line} {e.msgid!r}" for e in read_catalogue() if not e.forms or not all(e.forms)]
    assert not empty, "\n".join(empty)


def test_it_gives_every_plural_entry_both_german_forms():
    wrong = [
        f"{CATALOGUE.name}:{e.line} {e.msgid!r}"
        for e in read_catalogue()
        if e.msgid_plural is not None and sorted(e.msgstr) != [0, 1]
    ]
    assert not wrong, "\n".join(wrong)


def test_it_keeps_every_placeholder_of_the_source_string():
    wrong = []
    for entry in read_catalogue():
        wanted = placeholders(entry.msgid_plural or entry.msgid)
        for form in entry.forms:
            if placeholders(form) != wanted:
                wrong.append(f"{CATALOGUE.name}:{entry.line} {entry.msgid!r} -> {form!r}")
    assert not wrong, "\n".join(wrong)


# --- Pages: German first ----------------------------------------------------------------------


def test_it_shows_the_map_in_german_even_to_an_english_browser(client, db):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<html lang="de">' in page
    assert "Vollsperrung" in page, NOT_COMPILED
    assert "Legende" in page
    assert "Full closure" not in page


def test_it_shows_the_map_in_english_after_the_user_switches_language(client, db):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"

    response = client.get("/", HTTP_ACCEPT_LANGUAGE="de")
    page = response.content.decode()
    assert '<html lang="en">' in page
    assert "Full closure" in page
    assert "Legend" in page
    assert "Vollsperrung" not in page


def test_it_switches_the_map_back_to_german(client, db):
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    client.post("/i18n/setlang/", {"language": "de", "next": "/"})
    page = client.get("/").content.decode()
    assert '<html lang="de">' in page
    assert "Vollsperrung" in page, NOT_COMPILED


# --- The API: German by default, Accept-Language counts -----------------------------------------


def roadwork_ending_before_it_starts() -> dict:
    period = {"lower": "2027-03-12T17:00:00+01:00", "upper": "2027-03-01T07:00:00+01:00"}
    properties = {"title": "Fernwärme Luisenring", "period": period, "status": "submitted"}
    return feature(geojson_line(KAISERRING), **properties)


def period_errors(response) -> list[str]:
    assert response.status_code == 400, response.content
    errors = response.json()
    assert "period" in errors, errors
    return [str(text) for text in errors["period"]]


def test_it_answers_an_api_validation_error_in_german_by_default(api, alice):
    response = api(alice).post("/api/v1/roadworks/", roadwork_ending_before_it_starts(), format="json")
    assert period_errors(response) == ["Das Ende muss nach dem Beginn liegen."], NOT_COMPILED
    assert response["Content-Language"] == "de"


def test_it_answers_an_api_validation_error_in_english_when_the_client_asks_for_it(api, alice):
    response = api(alice).post(
        "/api/v1/roadworks/", roadwork_ending_before_it_starts(), format="json", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert period_errors(response) == ["The end must lie after the start."]
    assert response["Content-Language"] == "en"
