"""Site check: open every built page of the book in headless Chromium.

Each page of ``_build/html`` is loaded in Chromium (``--dump-dom``, so what is
checked is the page after its scripts ran) and fails on:

- a Python traceback, a cell's error or stderr output, an error admonition or a
  Sphinx/docutils system message;
- a missing image: an ``<img>`` whose file is absent, empty, or does not decode
  to a picture of non-zero size (what a browser's ``naturalWidth == 0`` means);
- an unresolved glue key (a raw ``{glue...}`` role, myst-nb's not-found text);
- an empty figure (a ``<figure>`` with no image, svg or table) and a matplotlib
  figure printed as text (``<Figure size 640x480 with 1 Axes>``);
- a local link that leads nowhere, or a download (a results table as CSV) that
  is missing or empty.

It also saves screenshots of the title page and of one findings page (the first
chapter of a part whose caption holds "Findings", else the data chapter) in
``_build/screenshots/`` for review.

Marked ``browser``; skipped when Chromium or ``_build/html`` is missing, unless
``SOS_REQUIRE_BOOK=1`` (``.ci/run``), which makes that a failure.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from conftest import require_book_or_skip as _require_or_skip

from analysis.book.browser import dump_dom, find_chromium, screenshot, toc_files

pytestmark = [pytest.mark.browser, pytest.mark.book]

ROOT = Path(__file__).resolve().parent.parent
# SOS_BUILD_DIR: check a book built elsewhere (jupyter-book build --path-output DIR -> DIR/_build)
BUILD = Path(os.environ.get("SOS_BUILD_DIR") or ROOT / "_build")
HTML = BUILD / "html"
SHOTS = BUILD / "screenshots"
SKIP_PAGES = {"genindex.html", "search.html"}
MEDIA = {"img", "svg", "object", "iframe", "video", "table", "canvas", "picture"}


def _is_redirect(page: Path) -> bool:
    head = page.read_text(encoding="utf-8", errors="ignore")[:500]
    return 'http-equiv="Refresh"' in head and "<body" not in head


def built_pages() -> list[Path]:
    if not HTML.is_dir():
        return []
    pages = []
    for p in sorted(HTML.rglob("*.html")):
        rel = p.relative_to(HTML)
        if rel.parts[0] in {"_static", "_sources", "_images"} or rel.name in SKIP_PAGES:
            continue
        if any(part.startswith(".") for part in rel.parts):  # .pytest_cache, .ipynb_checkpoints
            continue
        if _is_redirect(p):
            continue
        pages.append(p)
    return pages


class PageParser(HTMLParser):
    """Collects what the checks need from one page's DOM."""

    VOID = {"img", "br", "hr", "meta", "link", "input", "source", "col", "area", "base", "wbr", "embed"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, set[str]]] = []
        self.classes_seen: list[tuple[str, str]] = []   # (tag, class string)
        self.images: list[str] = []
        self.links: list[str] = []
        self.figures: list[dict] = []                   # {"id": ..., "media": int}
        self._open_figures: list[dict] = []
        self.text_parts: list[str] = []
        self._skip_text = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        cls = a.get("class") or ""
        self.classes_seen.append((tag, cls))
        if tag == "img" and a.get("src"):
            self.images.append(a["src"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        # media in a figure, not counting the icons of buttons (copybutton's svg)
        if tag in MEDIA and not any(t == "button" for t, _ in self.stack):
            for f in self._open_figures:
                f["media"] += 1
        if tag == "figure":
            fig = {"id": a.get("id", "?"), "media": 0}
            self.figures.append(fig)
            self._open_figures.append(fig)
        if tag in {"script", "style"}:
            self._skip_text += 1
        if tag not in self.VOID:
            self.stack.append((tag, set(cls.split())))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID and self.stack and self.stack[-1][0] == tag:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in {"script", "style"} and self._skip_text:
            self._skip_text -= 1
        if tag == "figure" and self._open_figures:
            self._open_figures.pop()
        # pop to the matching tag (tolerates unclosed tags)
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data):
        if not self._skip_text:
            self.text_parts.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.text_parts))


# class (on any element) -> what it means
BAD_CLASSES = {
    "traceback": "a Python traceback in a cell output",
    "highlight-ipythontb": "a Python traceback in a cell output",
    "stderr": "a cell wrote to stderr (a warning or error shown to readers)",
    "system-message": "a Sphinx/docutils error message rendered into the page",
    "problematic": "markup Sphinx could not resolve",
}
BAD_TEXT = {
    "Traceback (most recent call last)": "a Python traceback",
    "glue key not found": "an unresolved glue key",
    "{glue:": "a glue role left as raw text",
    "{glue}": "a glue role left as raw text",
    "{cite": "a citation left as raw text",
    "{numref}": "a cross-reference left as raw text",
    "<Figure size": "a matplotlib figure printed as text instead of drawn",
    "<matplotlib.": "a matplotlib object printed as text",
}


def _image_problem(page: Path, src: str) -> str | None:
    if src.startswith("data:"):
        return None if len(src) > 100 else f"empty data: image {src[:40]!r}"
    parts = urlsplit(src)
    if parts.scheme in {"http", "https"}:
        return None  # external (none expected; the book is offline)
    path = (page.parent / unquote(parts.path)).resolve()
    if not path.exists():
        return f"image {src} does not exist"
    if path.stat().st_size == 0:
        return f"image {src} is empty"
    if path.suffix.lower() == ".svg":
        head = path.read_text(errors="ignore")[:2000]
        return None if "<svg" in head else f"image {src} is not an SVG"
    try:
        from PIL import Image

        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            w, h = im.size
    except Exception as exc:  # noqa: BLE001 - any decoding failure is a broken image
        return f"image {src} does not decode ({exc})"
    if w == 0 or h == 0:
        return f"image {src} has zero size"
    return None


def _link_problem(page: Path, href: str) -> str | None:
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path:  # external, mailto:, or #anchor
        return None
    path = (page.parent / unquote(parts.path)).resolve()
    if path.is_dir():
        path = path / "index.html"
    if not path.exists():
        return f"link {href} leads nowhere"
    if path.suffix.lower() != ".html" and path.stat().st_size == 0:
        return f"download {href} is empty"
    return None


def page_problems(page: Path, dom: str) -> list[str]:
    p = PageParser()
    p.feed(dom)
    problems = []
    for tag, cls in p.classes_seen:
        classes = set(cls.split())
        for bad, why in BAD_CLASSES.items():
            if bad in classes:
                problems.append(f"{why} (<{tag} class=\"{cls}\">)")
        if "admonition" in classes and classes & {"error", "danger"}:
            problems.append(f"an error admonition (<{tag} class=\"{cls}\">)")
    text = p.text
    for bad, why in BAD_TEXT.items():
        if bad in text:
            at = text.find(bad)
            problems.append(f"{why}: ...{text[max(0, at - 60):at + 80]}...")
    for src in p.images:
        why = _image_problem(page, src)
        if why:
            problems.append(why)
    for href in p.links:
        why = _link_problem(page, href)
        if why:
            problems.append(why)
    for fig in p.figures:
        if fig["media"] == 0:
            problems.append(f"figure {fig['id']!r} has no image, svg or table")
    return sorted(set(problems))


@pytest.fixture(scope="module")
def doms() -> dict[Path, str]:
    _require_or_skip(find_chromium() is not None, "no headless Chromium installed")
    pages = built_pages()
    _require_or_skip(bool(pages), "_build/html not built: run make report")
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return dict(zip(pages, pool.map(dump_dom, pages)))


def test_every_page_renders_cleanly(doms):
    report = []
    for page, dom in doms.items():
        assert "</html>" in dom.lower() or "<body" in dom.lower(), f"{page}: Chromium returned no DOM"
        for problem in page_problems(page, dom):
            report.append(f"{page.relative_to(HTML)}: {problem}")
    assert not report, f"{len(report)} problem(s) on the built site:\n" + "\n".join(report)




def test_every_toc_page_was_built(doms):
    built = {p.relative_to(HTML).with_suffix("").as_posix() for p in doms}
    missing = [f for f in toc_files() if f not in built]
    assert not missing, f"chapters in _toc.yml with no built page: {missing}"


def _findings_page() -> str:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    for part in toc.get("parts", []):
        if "findings" in part.get("caption", "").lower() and part.get("chapters"):
            return part["chapters"][0]["file"]
    return "chapters/data"


def test_screenshots(doms):
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    shots = {"title": toc["root"], "findings": _findings_page()}
    for name, doc in shots.items():
        page = HTML / f"{doc}.html"
        assert page.exists(), page
        out = screenshot(page, SHOTS / f"{name}.png", (1280, 2000))
        from PIL import Image

        with Image.open(out) as im:
            assert im.size == (1280, 2000)
            lo, hi = im.convert("L").getextrema()
        assert hi - lo > 50, f"{out} is blank"


# The checks themselves, on synthetic pages (these need no browser).

@pytest.mark.parametrize("html, expect", [
    ('<div class="cell_output"><div class="output traceback highlight-ipythontb"><pre>x</pre></div></div>',
     "traceback"),
    ('<div class="output stderr"><pre>FutureWarning</pre></div>', "stderr"),
    ('<div class="admonition error"><p>boom</p></div>', "error admonition"),
    ('<figure id="fig-x"><div class="output text_plain"><pre>&lt;Figure size 990x1702 with 2 Axes&gt;</pre></div>'
     "<figcaption>c</figcaption></figure>", "has no image"),
    ('<p>There are {glue:text}`n_las` LAs.</p>', "glue role"),
    ('<figure id="fig-y"><div class="highlight"><button class="copybtn"><svg></svg></button>'
     "<pre>text</pre></div></figure>", "has no image"),
    ('<img src="_images/missing.png">', "does not exist"),
    ('<a href="../_static/tables/estimates.csv">Download this table (CSV)</a>', "leads nowhere"),
    ('<a href="other.html#x">next</a>', "leads nowhere"),
])
def test_page_checks_catch(tmp_path, html, expect):
    page = tmp_path / "p.html"
    problems = page_problems(page, f"<html><body>{html}</body></html>")
    assert any(expect in p for p in problems), problems


def test_page_checks_pass_good_page(tmp_path):
    from PIL import Image

    (tmp_path / "_images").mkdir()
    Image.new("RGB", (4, 3), "red").save(tmp_path / "_images" / "ok.png")
    page = tmp_path / "p.html"
    html = ('<html><body><figure id="f"><img src="_images/ok.png" alt="a"><figcaption>c</figcaption>'
            '</figure><p>Fine 2019.</p><script>var x = "{glue:";</script></body></html>')
    assert page_problems(page, html) == []


def test_page_checks_catch_empty_image(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "empty.png").write_bytes(b"")
    (tmp_path / "_images" / "junk.png").write_bytes(b"not a png")
    page = tmp_path / "p.html"
    problems = page_problems(page, '<img src="_images/empty.png"><img src="_images/junk.png">')
    assert any("is empty" in p for p in problems) and any("does not decode" in p for p in problems)
