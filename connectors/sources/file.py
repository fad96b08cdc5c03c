"""File formats -> markdown-like text: markdown and plain text as they are, HTML through the
standard library's parser, PDF through pypdf (one section per page).

Pure functions of the bytes they get: no network, no file system. Raises
``UnreadableContentError`` for content that cannot be read (a retry would not help).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser

from core.knowledge.ports import UnreadableContentError

MARKDOWN = "text/markdown"
PLAIN = "text/plain"
HTML = "text/html"
PDF = "application/pdf"

_SKIP_TAGS = frozenset({"script", "style", "noscript", "svg", "nav", "footer", "template", "head"})
_BLOCK_TAGS = frozenset(
    {"p", "div", "section", "article", "main", "ul", "ol", "table", "blockquote", "pre", "dl"}
)


@dataclass(frozen=True)
class ExtractedText:
    title: str
    markdown: str


def sniff_content_type(content: bytes, declared: str | None, name: str | None) -> str:
    """The format to parse: the declared type when it is one we read, else by name, else by
    the bytes themselves."""
    if declared:
        base = declared.split(";")[0].strip().lower()
        if base in (MARKDOWN, PLAIN, HTML, PDF):
            return base
        if base in ("application/xhtml+xml",):
            return HTML
    lower = (name or "").lower().split("?")[0]
    for ext, kind in ((".pdf", PDF), (".html", HTML), (".htm", HTML), (".md", MARKDOWN)):
        if lower.endswith(ext):
            return kind
    if lower.endswith(".txt"):
        return PLAIN
    head = content[:512].lstrip().lower()
    if head.startswith(b"%pdf-"):
        return PDF
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return HTML
    return MARKDOWN


def decode_text(content: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-8"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    return content.decode("latin-1")


class _HtmlToMarkdown(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP_TAGS:
            self._skip += 1
            return
        if self._skip:
            return
        if re.fullmatch(r"h[1-6]", tag):
            self.parts.append("\n\n" + "#" * int(tag[1]) + " ")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("br", "tr"):
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" | ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in _SKIP_TAGS:
            self._skip = max(self._skip - 1, 0)
            return
        if self._skip:
            return
        if re.fullmatch(r"h[1-6]", tag) or tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        if self._skip:
            return
        text = re.sub(r"\s+", " ", data)
        if text.strip():
            self.parts.append(text)


def html_to_markdown(content: bytes) -> ExtractedText:
    parser = _HtmlToMarkdown()
    parser.feed(decode_text(content))
    parser.close()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.splitlines()]
    markdown = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return ExtractedText(title=" ".join(parser.title.split()), markdown=markdown)


def pdf_to_markdown(content: bytes) -> ExtractedText:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(content))
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise UnreadableContentError(f"the PDF cannot be read: {exc}") from exc
    sections = [
        f"## Page {i}\n\n{text.strip()}" for i, text in enumerate(pages, start=1) if text.strip()
    ]
    if not sections:
        raise UnreadableContentError("the PDF has no extractable text (a scan needs OCR first)")
    return ExtractedText(title=str(meta_title).strip(), markdown="\n\n".join(sections))


def plain_to_markdown(content: bytes) -> ExtractedText:
    text = decode_text(content).replace("\r\n", "\n").strip()
    first, _, rest = text.partition("\n")
    # A short first line followed by a blank line is the document's title.
    if first.strip() and len(first) <= 100 and rest.startswith("\n"):
        return ExtractedText(title=first.strip(), markdown=rest.strip())
    return ExtractedText(title="", markdown=text)


def markdown_text(content: bytes) -> ExtractedText:
    text = decode_text(content).replace("\r\n", "\n").strip()
    match = re.search(r"^#\s+(.+)$", text, flags=re.MULTILINE)
    return ExtractedText(title=match.group(1).strip() if match else "", markdown=text)


def extract(content: bytes, content_type: str | None, name: str | None) -> ExtractedText:
    """Any supported format as markdown-like text, with the document's title when it has one."""
    if not content.strip():
        raise UnreadableContentError("the content is empty")
    kind = sniff_content_type(content, content_type, name)
    if kind == PDF:
        return pdf_to_markdown(content)
    if kind == HTML:
        return html_to_markdown(content)
    if kind == PLAIN:
        return plain_to_markdown(content)
    return markdown_text(content)
