"""Reading an admin list page in tests: the text of one column's cells, whatever markup wraps them."""

from __future__ import annotations

from html.parser import HTMLParser


class ColumnCells(HTMLParser):
    def __init__(self, column: str) -> None:
        super().__init__()
        self.css_class = f"field-{column}"
        self.cells: list[dict[str, str]] = []
        self.depth = 0  # inside one of the column's cells: how many tags deep

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if self.depth:
            self.depth += 1
            if "title" in attributes and "title" not in self.cells[-1]:
                self.cells[-1]["title"] = attributes["title"] or ""
        elif tag in ("td", "th") and self.css_class in (attributes.get("class") or "").split():
            self.depth = 1
            self.cells.append({"text": ""})

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.cells[-1]["text"] += data


def column(page: str, name: str) -> list[dict[str, str]]:
    """Each cell of the list's column `name`, top to bottom: its text ("text", whitespace as rendered) and the first
    tooltip inside it ("title", when there is one)."""
    parser = ColumnCells(name)
    parser.feed(page)
    return [{**cell, "text": " ".join(cell["text"].split())} for cell in parser.cells]
