"""The text the character-level GPT trains on: the article's own pages (standard library only).

Why the pages under docs/draft-000/ and docs/draft-001/ and not the seed drafts in ../shared/seeds:
the pages are the two drafts as this site publishes them and they ship with every checkout, so
any reader can rebuild the site, offline, without the project's shared folder. What the site adds
to the article is removed first: placeholders ({{ … }}), HTML comments, the site's boxes
(admonitions such as `!!! info "来源"` or `!!! note "说明"`, header and body; a `!!! quote` box
holds the drafts' own words, so its body is kept) and the computed-results sections (a heading
"运行结果（本机计算）…" and everything under it, down to the next heading of its level). So adding
results or explanations to a page leaves the corpus, and the trained model, as they were; editing
the article's words changes both.

`corpus_identity` is the registry's data-set hook (RunnerSpec.dataset): a digest of the cleaned
text, so the model is retrained exactly when its training text changes.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

DRAFTS = ("draft-000", "draft-001")
_PLACEHOLDER = re.compile(r"\s?\{\{.*?\}\}", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_BOX = re.compile(r"^(\s*)(?:!!!|\?\?\?\+?)\s*([\w-]+)")
_HEADING = re.compile(r"^(#+) ")


def default_root() -> Path:
    return Path(__file__).resolve().parents[2]


def page_files(root: Path) -> list[Path]:
    """The article's pages, draft by draft, in file-name order."""
    files = [p for draft in DRAFTS for p in sorted((root / "docs" / draft).glob("*.md"))]
    if not files:
        raise FileNotFoundError(f"no article pages under {root / 'docs'} ({', '.join(DRAFTS)}): the corpus is empty")
    return files


def _drop_boxes(text: str) -> str:
    """Remove admonition blocks (header and indented body), keeping the dedented body of quotes."""
    kept: list[str] = []
    box: tuple[int, bool] | None = None  # (indent of the header, keep the body)
    for line in text.split("\n"):
        if box is not None:
            indent, keep = box
            if not line.strip() or len(line) - len(line.lstrip()) > indent:
                if keep:
                    kept.append(line[indent + 4:])
                continue
            box = None
        header = _BOX.match(line)
        if header:
            box = (len(header.group(1)), header.group(2) == "quote")
            continue
        kept.append(line)
    return "\n".join(kept)


def _drop_results_sections(text: str) -> str:
    """Remove each computed-results section: from its heading ("#### 运行结果（本机计算）…") to the next heading
    of the same or a higher level. Everything in it is the site's: results, and the words that explain them."""
    kept: list[str] = []
    skipping: int | None = None  # level of the results heading being skipped
    fenced = False
    for line in text.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        heading = None if fenced else _HEADING.match(line)  # a "# comment" in code is no heading
        if heading and skipping is not None and len(heading.group(1)) <= skipping:
            skipping = None
        if skipping is not None:
            continue
        if heading and "本机计算" in line:
            skipping = len(heading.group(1))
            continue
        kept.append(line)
    return "\n".join(kept)


def clean(markdown: str) -> str:
    text = _COMMENT.sub("", markdown)
    text = _PLACEHOLDER.sub("", text)
    text = _drop_boxes(text)
    text = _drop_results_sections(text)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def corpus_text(root: Path | None = None) -> str:
    return "\n".join(clean(p.read_text(encoding="utf-8")) for p in page_files(root or default_root()))


def corpus_identity(root: Path) -> dict[str, str]:
    """The data-set hook of the registry: which text the model trains on, by digest and length."""
    text = corpus_text(root)
    return {"article_text": f"{len(text)} characters, sha256 {hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"}
