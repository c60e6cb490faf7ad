"""Report sentences too long to read at once: over 40 words, or with more than one semicolon.

    python -m docs.prose README.md docs     prints file:line for each one, and exits 1

Only prose is read. Code blocks, tables, headings, HTML comments and snippet lines are skipped.
A link counts as its text, and an inline code span as one word.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_WORDS = 40
MAX_SEMICOLONS = 1

_FENCE = re.compile(r"^\s*(```|~~~)")
_LIST_ITEM = re.compile(r"^\s*([-*+]|\d+[.)])\s+")
_ADMONITION = re.compile(r"^\s*(!!!|\?\?\?\+?)\s")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_IMAGE_OR_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_REFERENCE_LINK = re.compile(r"\[([^\]]*)\]\[[^\]]*\]")
_AUTOLINK = re.compile(r"<(https?://[^>]+)>")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_WORD = re.compile(r"\w")


@dataclass(frozen=True)
class Sentence:
    path: Path
    line: int
    text: str

    @property
    def words(self) -> int:
        return sum(1 for token in self.text.split() if _WORD.search(token))

    @property
    def semicolons(self) -> int:
        return self.text.count(";")


def _blocks(lines: list[str]) -> Iterator[list[tuple[int, str]]]:
    """Runs of prose lines (number, text): a paragraph, or one list item."""
    block: list[tuple[int, str]] = []
    fence: str | None = None
    in_comment = False
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1) == fence:
                fence = None
            continue
        if in_comment:
            in_comment = "-->" not in line
            continue
        skipped = (
            not stripped
            or stripped.startswith(("#", "|", "<!--"))
            or "--8<--" in line
            or _ADMONITION.match(line)
            or opened
        )
        if skipped or _LIST_ITEM.match(line):
            if block:
                yield block
            block = []
        if opened:
            fence = opened.group(1)
        elif stripped.startswith("<!--"):
            in_comment = "-->" not in stripped
        elif not skipped:
            block.append((number, _LIST_ITEM.sub("", line, count=1).strip()))
    if block:
        yield block


def _plain(text: str) -> str:
    """The words a reader reads: code spans as one word, links as their text, no markup."""
    text = _CODE_SPAN.sub("code", text)
    text = _IMAGE_OR_LINK.sub(r"\1", text)
    text = _REFERENCE_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub("link", text)
    text = _HTML_TAG.sub(" ", text)
    return text.replace("**", "").replace("__", "")


def sentences(path: Path) -> Iterator[Sentence]:
    """Every sentence of a Markdown file's prose, with the line it starts on."""
    for block in _blocks(path.read_text().splitlines()):
        text, starts = "", []
        for number, line in block:
            starts.append((len(text), number))
            text += _plain(line) + " "
        start = 0
        for end in [*(m for m in _SENTENCE_END.finditer(text)), None]:
            part = text[start : end.start() if end else len(text)]
            if part.strip():
                first = max(number for offset, number in starts if offset <= start)
                yield Sentence(path, first, " ".join(part.split()))
            if end:
                start = end.end()


def markdown_files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.rglob("*.md")) if path.is_dir() else [path]
    return found


def problems(sentence: Sentence) -> list[str]:
    found = []
    if sentence.words > MAX_WORDS:
        found.append(f"{sentence.words} words")
    if sentence.semicolons > MAX_SEMICOLONS:
        found.append(f"{sentence.semicolons} semicolons")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m docs.prose", description=__doc__)
    parser.add_argument("paths", nargs="+", type=Path, help="Markdown files or folders")
    args = parser.parse_args(argv)
    files = markdown_files(args.paths)
    every = [sentence for path in files for sentence in sentences(path)]
    bad = [(sentence, found) for sentence in every if (found := problems(sentence))]
    for sentence, found in bad:
        print(f"{sentence.path}:{sentence.line}: {', '.join(found)}: {sentence.text[:80]}...")
    if every:
        longest = max(every, key=lambda sentence: sentence.words)
        words = sorted(sentence.words for sentence in every)
        print(
            f"prose: {len(every)} sentences in {len(files)} files, median {words[len(words) // 2]}"
            f" words, longest {longest.words} ({longest.path}:{longest.line})",
            file=sys.stderr,
        )
    if bad:
        print(
            f"{len(bad)} sentences to split: at most {MAX_WORDS} words"
            f" and {MAX_SEMICOLONS} semicolon each",
            file=sys.stderr,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
