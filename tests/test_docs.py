"""The docs say what the code does.

Docs written while a part was missing keep saying so after it is built: the
operators' guide, the systemd README and the devices guide went on saying the
alarms and recorder roles, alerts, commands and keypad answers were "not built"
or "not yet" sent, long after they were. Three cheap checks catch that kind of
drift:

- a sentence saying something is missing, planned or a draft fails, unless it
  is listed below with the reason it is still true (so editing it, or building
  what it promises, means reading it again);
- every role the docs and the systemd units name (``--role X``, ``moydom@X``)
  is one ``moydom run`` takes, and the systemd README names every one;
- every ``MOYDOM_*`` variable the docs name is a setting (or one of the few
  variables the code reads itself), and every setting is documented.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from gateway.cli import Role
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "systemd").iterdir()],
)
#: Words of a sentence that says a part is missing, or will come.
UNFINISHED = re.compile(
    r"not built|not (?:yet )?implemented|not available in this version"
    r"|\b(?:does|do|is|are)\W{1,4}not\W{1,4}yet\b"
    r"|\b(?:send|sends|sent|run|runs|act|acts|exist|built|fixed|use|mark|record)\b[^.]{0,40}\byet\b"
    r"|\bno\b[^.]{0,40}\byet\b|\bcomes? with the\b|\bwill come\b|until they land"
    r"|in a later version|a later version can|\b(?:is|are) planned\b|\bTODO\b|\bTBD\b|\bFIXME\b"
    r"|\*draft\*|\bis a draft\b|still a draft",
    re.IGNORECASE,
)
#: (file, sentence) → why it is still true. Edit the sentence and it must be
#: read again, and listed again if it still holds.
REPEATS = "ingest stores msg_id but does not compare it (gateway/ingest/)"
STILL_TRUE: dict[tuple[str, str], str] = {
    (
        "docs/devices.md",
        "Native devices should still put a `msg_id` in every message and send the same "
        '`msg_id` when they repeat one (section "Native JSON"), so that a later version can.',
    ): REPEATS,
    ("docs/devices.md", "The gateway does not yet recognise such repeats."): REPEATS,
    (
        "docs/devices.md",
        "The gateway stores it but does not yet use it to recognise repeats |",
    ): REPEATS,
    ("docs/operators.md", "No package is built yet."): "installed from the source tree",
    (
        "docs/operators.md",
        "Not built in this version: retention of events, rejected messages and commands (they "
        "are deleted only by a terminated contract's purge, section 6), and a way to retire an "
        "ingest worker.",
    ): "the list of what this version lacks: each item checked against the code",
}
#: ``MOYDOM_*`` variables that are not settings: read by the code itself.
NOT_SETTINGS = {"MOYDOM_CONFIG", "MOYDOM_DEMO_RTSP_PORT"}


def sentences(text: str) -> list[str]:
    """Sentences, whitespace made single: a paragraph's lines joined (a table
    row or a list item is a paragraph of its own), then split after . ! ?"""
    found: list[str] = []
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)  # code, not prose
    for block in re.split(r"\n(?:\s*\n)+|\n(?=\s*(?:[|#]|[-*] |\d+\. ))", text):
        flat = " ".join(block.split())
        found += [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z*`(])", flat) if s]
    return found


def _sentences() -> set[tuple[str, str]]:
    return {(str(p.relative_to(ROOT)), s) for p in DOCS for s in sentences(p.read_text())}


def _docs_text() -> str:
    return "\n".join(path.read_text() for path in DOCS)


def test_no_sentence_says_a_part_is_missing_unless_it_still_is() -> None:
    found = sorted(k for k in _sentences() if UNFINISHED.search(k[1]) and k not in STILL_TRUE)
    assert not found, "read these again; still true? then list them in STILL_TRUE:\n" + "\n".join(
        f"{name}: {sentence}" for name, sentence in found
    )


def test_every_allowed_sentence_is_still_in_the_docs() -> None:
    """A sentence rewritten or removed leaves no stale entry behind."""
    assert not set(STILL_TRUE) - _sentences(), set(STILL_TRUE) - _sentences()


def test_the_check_catches_the_sentences_that_went_stale() -> None:
    """What the docs said about built parts, as it was written."""
    stale = """It does **not** yet run the alarm
engine, send commands or notifications, or record cameras. Those come with
the alarms and recorder work. The event history and the live stream follow below. Alerts
(`GET /api/v1/alerts`) are not built yet.
  - `alarms` and `recorder` do not exist yet. They are refused with
    `role(s) not available in this version: …` and exit code 2.
*The gateway does not
send this answer yet; it comes with the alarm engine.*"""
    flagged = [s for s in sentences(stale) if UNFINISHED.search(s)]
    assert len(flagged) == 6, flagged
    assert not [s for s in sentences("Messages not yet written are kept.") if UNFINISHED.search(s)]


def test_every_role_the_docs_name_is_a_role_of_moydom_run() -> None:
    roles = {r.value for r in Role}
    text = _docs_text()
    named = set()
    for found in re.findall(r"--role[ =]([a-z|%]+)", text):
        named.update(found.split("|"))
    named.update(re.findall(r"moydom@([a-z%]+)", text))
    named.discard("%i")  # the template's own instance specifier
    assert {"api", "ingest"} <= named
    assert named <= roles, named - roles
    units = (ROOT / "systemd" / "README.md").read_text()
    assert {r for r in roles if f"moydom@{r}" not in units} == set()


def test_every_documented_variable_is_a_setting_and_every_setting_is_documented() -> None:
    settings = {f"MOYDOM_{name.upper()}" for name in Settings.model_fields}
    text = _docs_text()
    documented = set(re.findall(r"MOYDOM_[A-Z0-9_]*[A-Z0-9]", text))
    assert documented - settings - NOT_SETTINGS == set()
    # The operators' table names them without the prefix: `NAME`.
    undocumented = {
        name
        for name in settings
        if name not in documented and f"`{name.removeprefix('MOYDOM_')}`" not in text
    }
    assert undocumented == set(), sorted(undocumented)


def test_the_variables_that_are_not_settings_are_read_by_the_code() -> None:
    read = set()
    for path in (ROOT / "gateway").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in NOT_SETTINGS:
                read.add(node.value)
    assert read == NOT_SETTINGS
