"""runners.plotting: figure text in Chinese is drawn with a CJK font, not as boxes."""

from __future__ import annotations

import warnings

import pytest

from reportgen.fonts import find_cjk_font
from runners import plotting


@pytest.mark.skipif(find_cjk_font() is None, reason="no CJK font on this machine (apt-get install fonts-noto-cjk)")
def test_chinese_text_has_every_glyph(tmp_path) -> None:
    import matplotlib.pyplot as plt

    name = plotting.use_cjk_font()
    assert name != "none"
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.set(title="混淆矩阵（测试集）", xlabel="预测数字", ylabel="真实数字 −1")
    ax.plot([0, 1], [0, 1], label="训练损失")
    ax.legend()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph … missing from font(s)" for each box it draws
        fig.savefig(tmp_path / "zh.png")
    plt.close(fig)
    assert (tmp_path / "zh.png").stat().st_size > 1000
