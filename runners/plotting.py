"""Figures in the site's language: matplotlib draws their Chinese text with a CJK font of the machine.

matplotlib's own font (DejaVu Sans) has no Chinese glyphs. `use_cjk_font()` registers the font that
`reportgen.fonts` finds (Noto Sans CJK from fonts-noto-cjk on Debian, PingFang on macOS, Microsoft
YaHei on Windows, …) as the fallback after DejaVu Sans, so Latin letters and digits look as before
and each Chinese character comes from the CJK font. Which font that is belongs to the cache key of
every runner that draws figures (the `cjk_font` probe in runners/registry.py). With none, the run
goes on, and a warning says what to install (the build's log says it too, from the probe).
"""

from __future__ import annotations

import functools
import sys

import matplotlib

from reportgen.fonts import MISSING, find_cjk_font

matplotlib.use("Agg")  # headless: runners only ever write PNGs


@functools.cache
def use_cjk_font() -> str:
    """Make matplotlib draw CJK text with the machine's CJK font; its family name, or "none"."""
    from matplotlib import font_manager, rcParams

    font = find_cjk_font()
    if font is None:
        print(f"warning: {MISSING}", file=sys.stderr)
        return "none"
    font_manager.fontManager.addfont(str(font))
    name = font_manager.FontProperties(fname=str(font)).get_name()
    # a list of families, not "sans-serif": each glyph comes from the first family that has it
    # (matplotlib >= 3.6), where a generic family would resolve to one font only
    rcParams["font.family"] = ["DejaVu Sans", name]
    return name
