"""Every word reportgen puts on a page, from one table per language (`zh.py`, `en.py`).

A table maps keys to `str.format` templates (`t("status.ok.title", title=...)`); each language
also formats dates its own way. `texts_for(code)` picks the table for a `theme.language` code:
`zh`, `zh_CN`, `zh-Hans`, `zh-TW` … all get `zh`, `en-GB` gets `en`, and a code with no table
gets English (FALLBACK): readers of an untranslated language are likelier to read English than
Chinese, and the page is still complete. A caller that passes no language gets DEFAULT, which is
what the pages said before they had tables (Chinese), so their output does not change.

`Message` is a text that keeps its key and fields: its `str` value is the English text (for logs,
the CLI and its tests), and a page shows it in the page's language (`Texts.message`). The
staleness reasons (`fingerprint.explain_change`) and the reasons a runner was not run
(`pipeline`) are Messages, so they are made once and shown in any language.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any

from reportgen.i18n import en, zh

DEFAULT = "zh"
FALLBACK = "en"
VERDICT_ICONS = {"agrees": "✓", "differs": "✗", "not_computable": "?", "contradictory": "⚠"}


@dataclass(frozen=True)
class Texts:
    """One language's table: `texts(key, **fields)` is the filled-in template."""

    code: str
    table: Mapping[str, str]
    format_date: Callable[[datetime], str]

    def __call__(self, key: str, **fields: Any) -> str:
        return self.table[key].format(**{k: self.message(v) for k, v in fields.items()})

    def has(self, key: str) -> bool:
        return key in self.table

    def message(self, value: Any) -> Any:
        """A Message in this language; any other value as it is (runner data is never translated)."""
        if isinstance(value, Message):
            return self(value.key, **value.fields)
        return value

    def join(self, items: Iterable[Any]) -> str:
        return self("list.sep").join(str(self.message(item)) for item in items)

    def paren(self, text: Any, note: Any) -> str:
        """`text（note）` or `text (note)`: the brackets differ by language."""
        return self("paren", text=text, note=note)

    def yes_no(self, value: bool) -> str:
        return self("bool.true" if value else "bool.false")

    def verdict(self, verdict: str) -> str:
        """The verdict with its icon, e.g. "✓ 相符" / "✓ agrees"."""
        return f"{VERDICT_ICONS[verdict]} {self('verdict.' + verdict)}"

    def origin(self, origin: str) -> str:
        return self(f"origin.{origin}") if self.has(f"origin.{origin}") else origin

    def date(self, value: Any, missing: str = "—") -> str:
        """A timestamp as this language writes it (in UTC); a value that is no timestamp as it is."""
        if not value:
            return missing
        try:
            when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
        # reportgen writes UTC ("…Z"); a timestamp with another offset is converted to it
        return self.format_date(when.astimezone(timezone.utc) if when.tzinfo else when)


_LANGUAGES = {
    module.CODE: Texts(module.CODE, MappingProxyType(dict(module.TEXTS)), module.format_date) for module in (zh, en)
}
LANGUAGES = tuple(_LANGUAGES)


def _primary(code: str | None) -> str:
    return re.split(r"[-_]", (code or "").strip().lower())[0]


def supported(code: str | None) -> bool:
    """Whether the code has a table of its own (else pages are in FALLBACK)."""
    return _primary(code) in _LANGUAGES


def language_code(code: str | None) -> str:
    """The table for a language code: its primary subtag when there is a table for it, else FALLBACK."""
    return _primary(code) if supported(code) else FALLBACK


def texts_for(code: str | None) -> Texts:
    return _LANGUAGES[language_code(code)]


DEFAULT_TEXTS = texts_for(DEFAULT)
ENGLISH = texts_for("en")


class Message(str):
    """A text in English that keeps its key and fields, so a page can show it in its own language."""

    key: str
    fields: dict[str, Any]

    def __new__(cls, key: str, **fields: Any) -> Message:
        message = super().__new__(cls, ENGLISH(key, **fields))
        message.key, message.fields = key, dict(fields)
        return message

    def __getnewargs_ex__(self) -> tuple[tuple[str], dict[str, Any]]:  # copy and pickle keep key and fields
        return (self.key,), dict(self.fields)


def term(name: str) -> str:
    """A name the tables translate (`what.<name>`: python, device, cpu…) as a Message, else the name."""
    return Message(f"what.{name}") if ENGLISH.has(f"what.{name}") else name


ABSENT = Message("reason.absent")  # the value of something that was not there before (or is no longer)
