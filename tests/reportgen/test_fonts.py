"""reportgen.fonts: which font draws a figure's Chinese text, found without a process or matplotlib."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from reportgen import fonts
from reportgen.probes import environment


def test_an_explicit_font_wins(tmp_path: Path) -> None:
    font = tmp_path / "MyCJK.ttf"
    font.write_bytes(b"\0" * 123)
    assert fonts.find_cjk_font({fonts.ENV_FONT: str(font)}) == font
    assert fonts.cjk_font_identity({fonts.ENV_FONT: str(font)}) == "MyCJK.ttf (123 bytes)"


def test_no_font_is_none_with_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(fonts, "CANDIDATES", ())
    monkeypatch.setattr(fonts, "FOLDERS", (str(tmp_path),))
    monkeypatch.setattr(fonts, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="reportgen.fonts"):
        assert fonts.cjk_font_identity({}) == "none"
        assert fonts.cjk_font_identity({}) == "none"
    warnings = [r.getMessage() for r in caplog.records if r.name == "reportgen.fonts"]
    assert len(warnings) == 1 and "fonts-noto-cjk" in warnings[0] and "boxes" in warnings[0]


def test_a_font_in_a_font_folder_is_found_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "noto").mkdir()
    font = tmp_path / "noto" / "NotoSansCJKsc-Regular.otf"
    font.write_bytes(b"x")
    monkeypatch.setattr(fonts, "CANDIDATES", ("/nonexistent/font.ttc",))
    monkeypatch.setattr(fonts, "FOLDERS", (str(tmp_path),))
    assert fonts.find_cjk_font({}) == font


def test_the_font_is_a_machine_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    font = tmp_path / "A.ttc"
    font.write_bytes(b"ab")
    monkeypatch.setenv(fonts.ENV_FONT, str(font))
    assert environment(("cjk_font",), 0) == {"cjk_font": "A.ttc (2 bytes)"}
    font.write_bytes(b"abc")  # another font file: another key
    assert environment(("cjk_font",), 0) == {"cjk_font": "A.ttc (3 bytes)"}
