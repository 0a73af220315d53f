"""Reading a built site back: the elements the docs tests look at, parsed with the stdlib."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path


@dataclass
class Row:
    rule: str
    classes: list[str]
    id: str | None
    cells: list[str] = field(default_factory=list)


@dataclass
class DecisionTable:
    action: str
    rows: list[Row] = field(default_factory=list)


@dataclass
class Page:
    path: Path
    ids: set[str] = field(default_factory=set)
    links: list[tuple[str, list[str]]] = field(default_factory=list)  # (href, classes)
    scripts: list[str] = field(default_factory=list)
    stylesheets: list[str] = field(default_factory=list)
    tables: list[DecisionTable] = field(default_factory=list)


class _PageParser(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page
        self.table: DecisionTable | None = None
        self.row: Row | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        classes = attributes.get("class", "").split()
        if "id" in attributes:
            self.page.ids.add(attributes["id"])
        if tag == "a" and "href" in attributes:
            self.page.links.append((attributes["href"], classes))
        elif tag == "script" and attributes.get("src"):
            self.page.scripts.append(attributes["src"])
        elif tag == "link" and attributes.get("rel") == "stylesheet":
            self.page.stylesheets.append(attributes.get("href", ""))
        elif tag == "table" and "sentra-decision" in classes:
            self.table = DecisionTable(attributes.get("data-action", ""))
            self.page.tables.append(self.table)
        elif tag == "tr" and self.table is not None and "data-rule" in attributes:
            self.row = Row(attributes["data-rule"], classes, attributes.get("id"))
            self.table.rows.append(self.row)
        elif tag == "td" and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.row is not None and self.cell is not None:
            self.row.cells.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr":
            self.row = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def read_page(path: Path) -> Page:
    page = Page(path)
    _PageParser(page).feed(path.read_text(encoding="utf-8"))
    return page
