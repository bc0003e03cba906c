"""How a number the article states is read: its value, and the precision a reader gives it."""

from __future__ import annotations

import pytest

from reportgen.api import check_claim, parse_stated_number, stated_reading


@pytest.mark.parametrize(
    ("text", "value", "tolerance"),
    [
        ("≈ 0.022", 0.022, 0.0005),  # every digit after the point counts
        ("0.5000", 0.5, 0.00005),
        ("-0.7616", -0.7616, 0.00005),
        ("−0.7616", -0.7616, 0.00005),  # the typographic minus
        ("66.67%", 66.67, 0.005),
        ("128", 128, 0.5),
        ("0", 0, 0.5),
        ("1750", 1750, 5),  # an integer's trailing zeros place its digits, they are not precision
        ("100", 100, 50),
        ("15亿", 1.5e9, 5e7),  # 亿 = 10⁸ scales the value and its precision
        ("1750亿", 1.75e11, 5e8),
        ("约 1750 亿个", 1.75e11, 5e8),
        ("1.5万", 15_000, 500),
        ("1.1万", 11_000, 500),  # one decimal literal: exactly 11000.0
        ("100万", 1e6, 5e5),
        ("3千万", 3e7, 5e6),  # units in a run multiply
        ("2万亿", 2e12, 5e11),
        ("1,557,611,200", 1_557_611_200, 50),
        ("1.5e9", 1.5e9, 5e7),
    ],
)
def test_value_and_precision(text: str, value: float, tolerance: float) -> None:
    parsed, tol = parse_stated_number(text)
    assert parsed == value
    assert tol == pytest.approx(tolerance, rel=1e-12)


def test_no_number() -> None:
    with pytest.raises(ValueError, match="no number"):
        parse_stated_number("数十亿")


def test_reading_is_language_neutral() -> None:
    assert stated_reading("1750亿") == "1.75e11 ± 5e8"
    assert stated_reading("15亿") == "1.5e9 ± 5e7"
    assert stated_reading("0.022") == "0.022 ± 0.0005"
    assert stated_reading("-0.7616") == "-0.7616 ± 5e-5"


def test_claims_use_the_reading() -> None:
    gpt3 = check_claim("gpt3", source="s", statement="1750亿参数", article="1750亿", computed=174_604_259_328)
    assert (gpt3.verdict, gpt3.tolerance, gpt3.reading) == ("agrees", 5e8, "1.75e11 ± 5e8")
    gpt2 = check_claim("gpt2", source="s", statement="15亿参数", article="15亿", computed=1_557_611_200)
    assert gpt2.verdict == "differs"  # 15.58亿 rounds to 16亿
    assert check_claim("x", source="s", statement="s", article="15亿", computed=1_542_000_000).verdict == "agrees"
    shape = check_claim("w", source="s", statement="s", article="128x156", computed="128x156")
    assert shape.reading == ""  # a string claim is compared as text, nothing is read
