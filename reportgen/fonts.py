"""Which installed font can draw Chinese, Japanese or Korean text in a figure, read cheaply.

A runner's figures carry text in the site's language; matplotlib's default font (DejaVu Sans) has
no CJK glyphs and draws boxes instead. `find_cjk_font` looks in the usual places for a font that
has them: Noto Sans CJK (Debian/Ubuntu `fonts-noto-cjk`, Fedora, Arch), WenQuanYi, Source Han Sans,
and the system fonts of macOS (PingFang, Hiragino, STHeiti) and Windows (Microsoft YaHei, SimHei).
`$LIVING_CJK_FONT` names one explicitly. No process is started (no fc-match) and no plotting
library is imported: the build reads it for the cache key (probe `cjk_font`), and a runner uses
the same answer to configure matplotlib in its own process.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

ENV_FONT = "LIVING_CJK_FONT"
# in order of preference: the first that exists is used
CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # Debian, Ubuntu: fonts-noto-cjk
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",  # Arch
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",  # Fedora
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/adobe-source-han-sans/SourceHanSans-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",  # macOS
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    "/System/Library/Fonts/STHeiti Medium.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",  # Windows: Microsoft YaHei
    "C:/Windows/Fonts/simhei.ttf",
    "C:/Windows/Fonts/simsun.ttc",
)
# font files found by name under the usual font folders, when none of the above exists
PATTERNS = ("NotoSansCJK*-Regular.*", "NotoSansSC-Regular.*", "SourceHanSans*-Regular.*", "wqy-*hei.ttc")
FOLDERS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.local/share/fonts", "~/.fonts", "~/Library/Fonts")
MISSING = (
    "no font with Chinese characters found: the figures' text will show as boxes. Install one "
    "(Debian/Ubuntu: apt-get install fonts-noto-cjk) or set LIVING_CJK_FONT to a .ttf/.otf/.ttc file"
)

log = logging.getLogger("reportgen.fonts")
_warned = False


def find_cjk_font(environ: dict[str, str] | None = None) -> Path | None:
    """The font file to draw CJK text with, or None when the machine has none."""
    env = os.environ if environ is None else environ
    explicit = env.get(ENV_FONT)
    if explicit:
        return Path(explicit) if Path(explicit).is_file() else None
    for candidate in CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    for folder in FOLDERS:
        root = Path(folder).expanduser()
        if not root.is_dir():
            continue
        for pattern in PATTERNS:
            found = sorted(root.rglob(pattern))
            if found:
                return found[0]
    return None


def cjk_font_identity(environ: dict[str, str] | None = None) -> str:
    """`name (size bytes)` of the font the figures use, for the cache key: another font draws other
    pixels. "none" (with a warning in the build's log, once) when there is none."""
    global _warned
    font = find_cjk_font(environ)
    if font is None:
        if not _warned:
            log.warning(f"living-article: {MISSING}")
            _warned = True
        return "none"
    try:
        return f"{font.name} ({font.stat().st_size} bytes)"
    except OSError:
        return f"{font.name} (unreadable)"
