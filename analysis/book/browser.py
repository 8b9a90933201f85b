"""Headless-browser helpers for the built book: print it to PDF, read pages, take screenshots.

The book is printed offline with Debian's ``chromium`` (Jupyter Book's own
``pdfhtml`` builder downloads a browser and fails without internet). ``make pdf``
builds the single-page HTML edition and then runs::

    python -m analysis.book.browser pdf          # _build/singlehtml -> _build/pdf/report.pdf

Other commands: ``check`` (exit 1 with a message when no browser is installed),
``screenshot PAGE.html OUT.png``, ``dom PAGE.html``. The browser is ``$SOS_CHROMIUM``
when set, else the first of ``chromium``, ``chromium-browser``, ``google-chrome``
on the PATH. Only the standard library is used, so the tests can import this
without the book's dependencies.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from analysis.core.paths import BUILD_DIR as BUILD
from analysis.core.paths import ROOT

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# Flags that let Chromium run headless as root in a container without network
# or a desktop session, and without touching the user's profile.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--run-all-compositor-stages-before-draw",
    # let page scripts (MathJax, theme) finish before the dump/print/screenshot
    "--virtual-time-budget=10000",
)
TIMEOUT = 180


class BrowserMissing(RuntimeError):
    """No headless Chromium on this machine."""


def find_chromium() -> str | None:
    """Path of the browser, or None."""
    env = os.environ.get("SOS_CHROMIUM")
    if env:
        return env if Path(env).exists() or shutil.which(env) else None
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def _require_chromium() -> str:
    path = find_chromium()
    if path is None:
        raise BrowserMissing(
            "no headless Chromium found (looked for $SOS_CHROMIUM, "
            + ", ".join(BROWSERS)
            + "); install Debian's chromium: apt-get install -y chromium"
        )
    return path


def _run(args: list[str], timeout: int = TIMEOUT) -> subprocess.CompletedProcess:
    exe = _require_chromium()
    with tempfile.TemporaryDirectory(prefix="sos-chromium-") as profile:
        cmd = [exe, *FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)


def _url(page: Path | str) -> str:
    page = str(page)
    if "://" in page:
        return page
    return Path(page).resolve().as_uri()


def dump_dom(page: Path | str) -> str:
    """The page's DOM after its scripts have run, serialised as HTML."""
    res = _run(["--dump-dom", _url(page)])
    if res.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom {page} failed: {res.stderr.strip()[-500:]}")
    return res.stdout


def screenshot(page: Path | str, out: Path | str, size: tuple[int, int] = (1280, 2000)) -> Path:
    """Save a PNG screenshot of the page's top ``size`` pixels."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    res = _run([f"--screenshot={out}", f"--window-size={size[0]},{size[1]}", _url(page)])
    if res.returncode != 0 or not out.exists() or out.stat().st_size == 0:
        raise RuntimeError(f"chromium --screenshot {page} failed: {res.stderr.strip()[-500:]}")
    return out


def print_pdf(page: Path | str, out: Path | str) -> Path:
    """Print the page to PDF (paper size and margins come from the page's @page CSS)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.unlink(missing_ok=True)
    res = _run(["--no-pdf-header-footer", f"--print-to-pdf={tmp}", _url(page)])
    if res.returncode != 0 or not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise RuntimeError(f"chromium --print-to-pdf {page} failed: {res.stderr.strip()[-500:]}")
    tmp.replace(out)  # never leave a half-written report.pdf behind
    return out


def single_page(singlehtml: Path) -> Path:
    """The single-page edition, placed where its relative links resolve.

    Sphinx's singlehtml builder writes the whole book to the root document's
    path (``chapters/index.html``) but writes its links (``_static/...``,
    ``_images/...``) relative to the output root; a copy at the root,
    ``report.html``, shows with its styles and images.
    """
    root_doc = singlehtml / "chapters" / "index.html"
    if not root_doc.exists():
        candidates = [p for p in singlehtml.rglob("*.html") if p.name not in {"genindex.html", "search.html"}]
        candidates = [p for p in candidates if 'http-equiv="Refresh"' not in p.read_text(errors="ignore")[:300]]
        if not candidates:
            raise FileNotFoundError(f"no single-page build in {singlehtml}: run "
                                    "jupyter-book build --builder singlehtml . first")
        root_doc = max(candidates, key=lambda p: p.stat().st_size)
    page = singlehtml / "report.html"
    shutil.copyfile(root_doc, page)
    return page


#: Height of the printed page's top and bottom margins (``@page`` in ``_static/report.css``),
#: in PDF points: the running header and the page number live there, not the body.
MARGIN_TOP_PT = 18 / 25.4 * 72
MARGIN_BOTTOM_PT = 20 / 25.4 * 72
#: A numbered figure caption ("Fig. 5 The study's ..."), which Sphinx prints below its image;
#: the caption text starts with a capital, unlike a sentence citing it ("Fig. 5 shows ...").
FIGURE_CAPTION = re.compile(r"^(?:Fig(?:ure)?\.?)\s*\d+\s+[A-Z\u2018\u201c'\"(]")
#: A numbered table caption ("Table 3 Pilots ..."), which Sphinx prints above its table.
TABLE_CAPTION = re.compile(r"^Table\.?\s*\d+\s+[A-Z\u2018\u201c'\"(]")


@dataclass
class PageCheck:
    """What one printed page holds (see :func:`check_pages`)."""

    number: int                     # 1-based
    ink: float                      # share of the page's pixels that are not white (0-1)
    chars: int                      # characters of text in the body (margins excluded)
    first_line: str                 # the body's first line of text ('' when it has none)
    last_line: str                  # the body's last line of text
    images: list[tuple[float, float, float, float]]   # (left, bottom, right, top) of each image, points
    image_scales: list[float]       # printed size / natural size of each image (natural: 150 dpi)
    first_line_top: float = 0.0     # top of the first line, points from the page's foot
    image_above_first_line: bool = False

    @property
    def caption_alone_on_top(self) -> bool:
        """The body starts with a figure caption and no image above it: the figure is on the page before."""
        return bool(FIGURE_CAPTION.match(self.first_line)) and not self.image_above_first_line

    @property
    def table_caption_at_foot(self) -> bool:
        """The body ends with a table caption: its table went to the next page."""
        return bool(TABLE_CAPTION.match(self.last_line))


#: Resolution at which the book's figures are drawn (``analysis.book.figures``: PNG at 150 dpi).
FIGURE_DPI = 150


def check_pages(pdf: Path | str, scale: float = 0.5) -> list[PageCheck]:
    """Measure every page of a PDF: non-white share, body text, first and last line, images.

    Parameters
    ----------
    pdf : path
        The printed report.
    scale : float
        Rendering scale (1 = 72 dpi) for the non-white share; a pixel counts as
        ink when its darkest channel is below 245 of 255.

    Returns
    -------
    list of PageCheck
        One per page, in order. The body is the page less its ``@page``
        margins (:data:`MARGIN_TOP_PT`, :data:`MARGIN_BOTTOM_PT`), so the
        running header and page number are not counted as text. Lines are in
        reading order (Chromium writes the text in document order).
    """
    # pypdfium2 (and numpy) are test dependencies (pyproject ``test`` extra), imported here
    # so that printing (``pdf``, ``check``) keeps to the standard library.
    import numpy as np
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    doc = pdfium.PdfDocument(str(pdf))
    out = []
    try:
        for i in range(len(doc)):
            page = doc[i]
            width, height = page.get_size()
            arr = page.render(scale=scale).to_numpy()
            grey = arr if arr.ndim == 2 else arr[..., :3].min(axis=2)
            ink = float(np.mean(grey < 245))
            top, bottom = height - MARGIN_TOP_PT, MARGIN_BOTTOM_PT
            tp = page.get_textpage()
            n = tp.count_chars()
            body = []
            for k in range(n):
                left, b, right, t = tp.get_charbox(k)
                if right > left and b >= bottom - 1 and t <= top + 1:
                    body.append((k, t))
            text = tp.get_text_bounded(left=0, bottom=bottom, right=width, top=top) if body else ""
            lines = [" ".join(x.split()) for x in text.splitlines()]
            lines = [x for x in lines if x]
            first_top = body[0][1] if body else 0.0
            images, scales = [], []
            for obj in page.get_objects(max_depth=5):
                if obj.type != pdfium_c.FPDF_PAGEOBJ_IMAGE:
                    continue
                box = tuple(float(v) for v in obj.get_bounds())
                if box[3] < bottom or box[1] > top:
                    continue
                images.append(box)
                px_w = obj.get_px_size()[0]
                scales.append((box[2] - box[0]) / (px_w / FIGURE_DPI * 72) if px_w else float("nan"))
            above = any(box[1] >= first_top - 2 for box in images) if body else bool(images)
            out.append(PageCheck(number=i + 1, ink=ink, chars=len("".join(text.split())),
                                 first_line=lines[0] if lines else "", last_line=lines[-1] if lines else "",
                                 images=images, image_scales=scales, first_line_top=first_top,
                                 image_above_first_line=above))
            tp.close()
            page.close()
    finally:
        doc.close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``check``, ``pdf``, ``screenshot``, ``dom``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 when the browser is missing or fails.
    """
    ap = argparse.ArgumentParser(prog="python -m analysis.book.browser", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check", help="exit 1 with a message when no headless Chromium is installed")
    p = sub.add_parser("pdf", help="print the single-page build to PDF")
    p.add_argument("--singlehtml", type=Path, default=BUILD / "singlehtml")
    p.add_argument("--out", type=Path, default=BUILD / "pdf" / "report.pdf")
    s = sub.add_parser("screenshot", help="screenshot one page")
    s.add_argument("page")
    s.add_argument("out", type=Path)
    s.add_argument("--size", default="1280,2000")
    d = sub.add_parser("dom", help="print one page's DOM after its scripts ran")
    d.add_argument("page")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "check":
            print(_require_chromium())
        elif args.cmd == "pdf":
            out = print_pdf(single_page(args.singlehtml), args.out)
            print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")
        elif args.cmd == "screenshot":
            w, h = (int(x) for x in args.size.split(","))
            print(screenshot(args.page, args.out, (w, h)))
        elif args.cmd == "dom":
            sys.stdout.write(dump_dom(args.page))
    except BrowserMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (RuntimeError, FileNotFoundError, subprocess.TimeoutExpired) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


def toc_files() -> list[str]:
    """Every document of the book in ``_toc.yml`` order (root first), as written there."""
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(node) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(toc.get("parts", toc.get("chapters", [])))
    return files
