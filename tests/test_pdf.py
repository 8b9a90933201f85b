"""The printed report reads on paper: no empty page, no caption torn from its figure, legible figures.

Marker ``book``: these tests check the PDF that ``make pdf`` prints after ``make
report`` (``_build/pdf/report.pdf``, or ``$SOS_BUILD_DIR/pdf/report.pdf``); ``make
check-book`` runs them, where a missing or stale PDF is a failure
(``SOS_REQUIRE_BOOK=1``); elsewhere they skip. Each page is measured with
:func:`analysis.book.browser.check_pages` (pypdfium2): its share of non-white
pixels, the characters of text in its body (the ``@page`` margins, with the
running header and the page number, excluded), its first and last lines of text,
and the printed size of each image against the size it was drawn at.

What fails, and why these thresholds:

- **An almost empty page**: less than :data:`MIN_INK` of the page non-white, or
  fewer than :data:`MIN_CHARS` characters of text on a page without an image.
  Pages that a print layout empties by mistake (a lone table row or download
  link carried over, a caption without its figure) measured 1.0-1.6% and under
  250 characters; the shortest intended page, the last few lines of a chapter
  before the next starts on a new page, measures about 2% and 240 characters.
  The last page of the book is exempt (the end of the reference list may be short).
- **A caption alone at the top of a page**: the body's first line is a figure
  caption ("Fig. 5 The ...") and no image stands above it, so its figure is on
  the page before; or a page ends with a table caption, whose table starts
  on the next page.
- **A figure printed too small to read**: an image printed at less than
  :data:`MIN_SCALE` of the size it was drawn at (the book draws figures at the
  page's width with 8-10 pt text, so this keeps text at about 6.5 pt or more).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import require_book_or_skip as _require_or_skip

from analysis.book.browser import check_pages, toc_files

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("SOS_BUILD_DIR") or ROOT / "_build")
PDF = BUILD / "pdf" / "report.pdf"

#: Least share of non-white pixels on a page (the whole page, margins included).
MIN_INK = 0.015
#: Least characters of body text on a page without an image.
MIN_CHARS = 200
#: Least printed size of a figure, as a share of the size it was drawn at.
MIN_SCALE = 0.8


@pytest.fixture(scope="module")
def pages():
    pytest.importorskip("pypdfium2")
    _require_or_skip(PDF.exists(), f"{PDF} not built: run make report && make pdf")
    sources = [ROOT / "_toc.yml", ROOT / "_config.yml", *sorted((ROOT / "_static").glob("*.css")),
               *[ROOT / f"{f}.md" for f in toc_files() if (ROOT / f"{f}.md").exists()]]
    newest = max(sources, key=lambda p: p.stat().st_mtime)
    _require_or_skip(PDF.stat().st_mtime >= newest.stat().st_mtime,
                     f"{PDF} is older than {newest.relative_to(ROOT)}: run make pdf")
    result = check_pages(PDF)
    assert result, f"{PDF} has no pages"
    return result


@pytest.mark.book
def test_pdf_no_page_is_almost_empty(pages):
    empty = [p for p in pages[:-1]
             if p.ink < MIN_INK or (p.chars < MIN_CHARS and not p.images)]
    assert not empty, (
        f"{len(empty)} of {len(pages)} pages almost empty (less than {MIN_INK:.1%} non-white or fewer "
        f"than {MIN_CHARS} characters without a figure):\n"
        + "\n".join(f"  page {p.number}: {p.ink:.2%} non-white, {p.chars} characters, "
                    f"first line {p.first_line[:70]!r}" for p in empty))
    assert pages[-1].chars > 0 or pages[-1].images, "the last page is blank"


@pytest.mark.book
def test_pdf_no_caption_is_separated_from_its_figure_or_table(pages):
    alone = [p for p in pages if p.caption_alone_on_top]
    assert not alone, "figure captions at the top of a page, their figure on the page before:\n" + "\n".join(
        f"  page {p.number}: {p.first_line[:90]!r}" for p in alone)
    foot = [p for p in pages if p.table_caption_at_foot]
    assert not foot, "table captions at the foot of a page, their table on the next:\n" + "\n".join(
        f"  page {p.number}: {p.last_line[:90]!r}" for p in foot)


@pytest.mark.book
def test_pdf_figures_print_at_a_legible_size(pages):
    small = [(p.number, s) for p in pages for s in p.image_scales if s < MIN_SCALE]
    assert not small, (
        f"figures printed at less than {MIN_SCALE:.0%} of their drawn size (text too small on A4; "
        "draw them at the page's width, or split a tall grid into several figures):\n"
        + "\n".join(f"  page {n}: printed at {s:.0%}" for n, s in small))
    assert sum(len(p.images) for p in pages) > 0, "no figure in the PDF"


@pytest.mark.book
def test_pdf_measures_every_page(pages):
    """The measurement itself: every page measured once, numbered in order, the title page with text."""
    assert [p.number for p in pages] == list(range(1, len(pages) + 1))
    assert pages[0].chars > 0
    assert all(0.0 <= p.ink <= 1.0 for p in pages)
