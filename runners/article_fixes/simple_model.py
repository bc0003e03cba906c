"""The article's §5.2 script: run it as printed, apply the smallest fix, and train the fixed model.

`pytorch_project` builds the page from these pieces; they live here so that each module stays
short and the tests can call them directly.
"""

from __future__ import annotations

import contextlib
import difflib
import io
import linecache
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.optim as optim

ARTICLE_SCRIPT = Path(__file__).resolve().parents[1] / "article_code" / "simple_model.py"

# The smallest edit that makes the script correct, as literal replacements on the article's text,
# so the diff on the page is exactly what we changed. Each `old` must occur exactly once.
SIGMOID_FIX = (
    "        x = self.layer2(x)\n        return x\n",
    "        x = self.layer2(x)\n        x = self.sigmoid(x)\n        return x\n",
)
TARGET_FIX = (
    "y = torch.tensor([0, 1, 1], dtype=torch.float32)\n",
    "y = torch.tensor([[0], [1], [1]], dtype=torch.float32)\n",
)
FIXES: tuple[tuple[str, str], ...] = (SIGMOID_FIX, TARGET_FIX)


def article_source() -> str:
    return ARTICLE_SCRIPT.read_text(encoding="utf-8")


def apply_fixes(source: str, fixes: tuple[tuple[str, str], ...] = FIXES) -> str:
    for old, new in fixes:
        count = source.count(old)
        if count != 1:
            raise ValueError(f"fix expects exactly one occurrence of {old!r}, found {count}")
        source = source.replace(old, new)
    return source


def unified_diff(before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile="simple_model.py (文章原文)",
            tofile="simple_model.py (最小修正)",
        )
    )


@dataclass
class ScriptRun:
    stdout: str
    error: str  # "Type: message" on one line, "" when the script finished
    traceback: str  # trimmed to the script's frames and torch's own, "" when it finished
    namespace: dict

    @property
    def ok(self) -> bool:
        return self.error == ""


def _short_traceback(exc: BaseException, filename: str) -> str:
    """The traceback from the script's first frame on, with site-packages paths shortened.

    Absolute install paths would make the page depend on the machine that built it.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    start = next((i for i, f in enumerate(frames) if f.filename == filename), 0)
    kept = []
    for f in frames[start:]:
        name = f.filename
        if "site-packages/" in name:
            name = name.split("site-packages/", 1)[1]
        kept.append(traceback.FrameSummary(name, f.lineno, f.name, line=f.line))
    head = "Traceback (most recent call last):\n"
    return head + "".join(traceback.format_list(kept)) + "".join(traceback.format_exception_only(type(exc), exc))


def run_script(source: str, seed: int, filename: str = "simple_model.py") -> ScriptRun:
    """Execute `source` as `__main__` in a fresh namespace after torch.manual_seed(seed).

    The source is registered with linecache so the traceback shows the script's own lines.
    """
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    namespace: dict = {"__name__": "__main__", "__file__": filename}
    buffer = io.StringIO()
    torch.manual_seed(seed)
    try:
        with contextlib.redirect_stdout(buffer):
            exec(compile(source, filename, "exec"), namespace)
    except Exception as exc:  # the article's script is expected to fail: record it as data
        error = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        return ScriptRun(buffer.getvalue(), error, _short_traceback(exc, filename), namespace)
    return ScriptRun(buffer.getvalue(), "", "", namespace)


class FixedModel(nn.Module):
    """The article's SimpleModel with the final sigmoid; layers are created in the same order,
    so the same seed gives the same initial weights as the fixed script."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Linear(2, 2)
        self.layer2 = nn.Linear(2, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sigmoid(self.layer2(self.sigmoid(self.layer1(x))))


@dataclass
class Training:
    losses: list[float]  # loss.item() of each epoch, computed before that epoch's step (as printed)
    accuracy: float  # percent, unrounded
    outputs: list[float]  # final model outputs for the three samples


def train_fixed(seed: int, epochs: int = 100, lr: float = 0.01) -> Training:
    """The fixed script's training, without DataLoader: batch_size=3 is the whole data set,
    one step per epoch, so the same tensors reach the same ops in the same order."""
    torch.manual_seed(seed)
    model = FixedModel()
    criterion = nn.BCELoss()
    optimizer = optim.Adam(model.parameters(), lr=lr)
    x = torch.tensor([[1, 0], [0, 1], [1, 1]], dtype=torch.float32)
    y = torch.tensor([[0], [1], [1]], dtype=torch.float32)
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        outputs = model(x)
        correct = ((outputs > 0.5).float() == y).sum().item()
    return Training(losses, correct / len(y) * 100, outputs.flatten().tolist())


def format_log(training: Training, epochs: int = 100) -> str:
    """What the fixed script prints for this training (same f-strings as the article)."""
    lines = [
        f"Epoch [{epoch + 1}/{epochs}], Loss: {loss:.4f}"
        for epoch, loss in enumerate(training.losses)
        if (epoch + 1) % 10 == 0
    ]
    lines.append(f"Accuracy: {training.accuracy:.2f}%")
    return "\n".join(lines) + "\n"
