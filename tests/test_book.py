"""The book: no hand-typed numbers in the prose, citations that resolve, the PDF.

1. ``test_no_typed_numbers_in_prose`` scans every chapter source (``chapters/*.md``)
   for digits in the prose. Digits are fine inside code cells and other code
   fences, glue roles and directives, citations and cross-references, front
   matter, directive options, URLs, inline code identifiers, maths indices and
   dates; a few named terms (a statute, a measure's name, a fixed age range) are
   allowed by pattern in ``ALLOWED`` with the reason. Any other digit is a number
   typed by hand, which a rebuild on new data would leave stale: the test names
   the file and line of each one. Put the number in through ``glue`` instead.
2. ``test_pdf_*`` (marker ``book``: ``make check-book``, after ``make report`` and
   ``make pdf``) check ``_build/pdf/report.pdf``: page count in range, title on the
   first page, every chapter printed. A missing PDF or Chromium is a failure there
   (``SOS_REQUIRE_BOOK=1``). That the whole book builds with ``-W`` and no warning is
   what ``make report`` itself checks.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import require_book_or_skip as _require_or_skip

from analysis.book.browser import toc_files

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = ROOT / "chapters"
# SOS_BUILD_DIR: check a book built elsewhere (jupyter-book build --path-output DIR -> DIR/_build)
BUILD = Path(os.environ.get("SOS_BUILD_DIR") or ROOT / "_build")
PDF = BUILD / "pdf" / "report.pdf"

# ---------------------------------------------------------------------------
# 1. Digits in prose
# ---------------------------------------------------------------------------

MONTHS = ("January|February|March|April|May|June|July|August|September|October|"
          "November|December")
YEAR = r"(?:199\d|20[0-3]\d)"
DAY = r"(?:[1-9]|[12]\d|3[01])(?:st|nd|rd|th)?"

# Dates: always allowed (the study's calendar is part of its design, and DfE
# reporting years are named by the year they end in).
DATE_PATTERNS: list[tuple[str, str]] = [
    (rf"\b{DAY}\s+(?:{MONTHS})(?:\s+{YEAR})?\b", "day and month (31 March, 1 April 2014)"),
    (rf"\b(?:{MONTHS})\s+{DAY}(?:,?\s+{YEAR})?\b", "month and day (March 31)"),
    (rf"\b{YEAR}\s*(?:-|–|/|to)\s*(?:{YEAR}|\d\d)\b", "year range (2015-2017, 2014-15, 2014/15)"),
    (rf"\b{YEAR}s?\b", "year (1990-2039) or decade (2010s)"),
]

# Named terms that contain digits: allowed by pattern, each with its reason.
ALLOWED: list[tuple[str, str]] = [
    (r"\baged\s+0\s*(?:to|-|–)\s*17\b|\b0\s*(?:-|–|to)\s*17\b",
     "children aged 0 to 17: the fixed population definition of DfE and ONS rates"),
    (r"\b45[- ]working[- ]days?\b", "'45 working days': the name of the assessment-timeliness measure"),
    (r"\bwithin\s+12\s+months\b|\b12[- ]month\b",
     "'re-referrals within 12 months': the name of DfE's re-referral measure"),
    (r"\bper\s+10,000\b", "'per 10,000 children': the unit of DfE's rates"),
    (r"\b[Ss]ection\s+(?:17|20|31|47)\b|\b[Ss](?:17|20|31|47)\b",
     "Children Act 1989 sections (section 17 child in need, section 47 enquiries)"),
    (r"\b[Ww]aves?[- ][12]\b|\b[Rr]ound[- ][12]\b",
     "wave 1 and wave 2: the names of the two rounds of the Innovation Programme"),
    (r"\bCOVID-19\b|\bCovid-19\b", "the name of the pandemic"),
    (r"\bLicence\s+v3\.0\b", "the name of the Open Government Licence v3.0"),
]

# Tokens that are identifiers rather than quantities: letters followed by digits
# (SSDA903, E09000005, sha256, MYE5, s47, v3).
IDENTIFIER = r"\b[A-Za-z][A-Za-z_]*\d[A-Za-z0-9_.]*\b"

# Roles whose content is not prose.
NON_PROSE_ROLES = (
    r"glue(?::[a-z]*)?|cite(?::[a-z]+)?|numref|ref|doc|eq|download|any|term|"
    r"prf:ref|external(?::[a-z:]+)?|abbr|math"
)
# Directives whose body is code, data or generated output: skipped whole.
CODE_DIRECTIVES = {
    "code-cell", "code-block", "code", "sourcecode", "literalinclude", "include",
    "bibliography", "raw", "eval-rst", "glue", "glue:any", "glue:md", "glue:math",
    "math", "csv-table", "list-table", "jupyter-execute", "tableofcontents", "toctree",
    "mermaid", "graphviz",
}
# Directives whose argument is a path or key (not prose); their body is prose.
PATH_ARG_DIRECTIVES = {"figure", "image", "glue:figure"}


@dataclass
class Offence:
    path: Path
    line: int
    text: str
    digits: str

    def __str__(self) -> str:
        rel = self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path
        return f"{rel}:{self.line}: {self.digits!r} in: {self.text.strip()}"


def _blank(s: str) -> str:
    """Replace every character but newlines with a space (keeps line numbers)."""
    return re.sub(r"[^\n]", " ", s)


def _mask(text: str, pattern: str, flags: int = 0, group: int = 0) -> str:
    def sub(m: re.Match) -> str:
        start, end = m.span(group)
        s0 = m.start()
        whole = m.group(0)
        return whole[: start - s0] + _blank(whole[start - s0 : end - s0]) + whole[end - s0 :]
    return re.sub(pattern, sub, text, flags=flags)


FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})\s*(?P<info>.*)$")


def _strip_blocks(lines: list[str]) -> list[str]:
    """Blank front matter, code fences, code directives, directive options and path arguments."""
    out = list(lines)
    i = 0
    # jupytext / MyST front matter
    if out and out[0].strip() == "---":
        for j in range(1, len(out)):
            if out[j].strip() == "---":
                for k in range(0, j + 1):
                    out[k] = ""
                i = j + 1
                break

    def close_index(start: int, fence: str) -> int:
        char, n = fence[0], len(fence)
        for j in range(start + 1, len(out)):
            s = out[j].strip()
            if s and set(s) == {char} and len(s) >= n:
                return j
        return len(out)

    while i < len(out):
        m = FENCE_OPEN.match(out[i])
        if not m:
            i += 1
            continue
        fence, info = m.group("fence"), m.group("info").strip()
        end = close_index(i, fence)
        d = re.match(r"\{([^}]+)\}\s*(.*)$", info)
        if not d:  # a plain code fence (```python, ```text, ...): code, skip whole
            if fence[0] == ":" and not info:
                i += 1
                continue
            for k in range(i, min(end + 1, len(out))):
                out[k] = ""
            i = end + 1
            continue
        name, arg = d.group(1).strip(), d.group(2)
        if name in CODE_DIRECTIVES:
            for k in range(i, min(end + 1, len(out))):
                out[k] = ""
            i = end + 1
            continue
        # A prose directive (note, admonition, figure, table, margin, dropdown...):
        # blank the opening line's directive name, and its argument when a path/key.
        out[i] = "" if name in PATH_ARG_DIRECTIVES else (arg if arg else "")
        k = i + 1
        # options: a YAML block between --- lines, or :key: value lines
        if k < end and out[k].strip() == "---":
            k2 = k + 1
            while k2 < end and out[k2].strip() != "---":
                k2 += 1
            for q in range(k, min(k2 + 1, end)):
                out[q] = ""
            k = k2 + 1
        while k < end and re.match(r"^\s*:[\w-]+:", out[k]):
            out[k] = ""
            k += 1
        if end < len(out):
            out[end] = ""
        # The body stays to be scanned (nested fences are handled as the loop goes on).
        i += 1
    return out


def prose_only(text: str) -> str:
    """The chapter source with everything that is not prose blanked, line numbers kept."""
    lines = _strip_blocks(text.split("\n"))
    t = "\n".join(lines)
    t = _mask(t, r"<!--.*?-->", re.S)                                # HTML comments
    t = _mask(t, r"(?m)^\s*%.*$")                                     # MyST comments
    t = _mask(t, r"(?m)^\+\+\+.*$")                                   # jupytext cell breaks
    t = _mask(t, r"(?m)^\s*\([\w:.-]+\)=\s*$")                       # (label)= targets
    t = _mask(t, r"\{\{.*?\}\}", re.S)                                # substitutions
    t = _mask(t, r"\{(?:" + NON_PROSE_ROLES + r")\}`[^`]*`")         # glue/cite/ref roles
    t = _mask(t, r"\$\$.*?\$\$", re.S)                                # display maths (see below)
    t = _mask(t, r"\]\(([^)]*)\)", group=1)                           # link targets
    t = _mask(t, r"<https?://[^>]*>|https?://[^\s)>\]]+")          # URLs
    t = _mask(t, r"\[\^[^\]]*\]")                                     # footnote labels
    t = _mask(t, r"\{#[^}]*\}")                                       # heading anchors
    t = _mask(t, r"</?[a-zA-Z][^>]*>")                                # HTML tags
    t = _mask(t, r"(?m)^\s*\d+[.)]\s")                               # ordered-list markers
    # Inline code: an identifier or command is not a typed number, a bare number is.
    t = re.sub(r"`([^`\n]+)`",
               lambda m: m.group(0) if re.fullmatch(r"[\d\s.,%+-]+", m.group(1)) else _blank(m.group(0)),
               t)
    # Inline maths: indices and powers (x_1, x^2) are notation; other digits count.
    t = re.sub(r"\$([^$\n]+)\$",
               lambda m: " " + re.sub(r"([_^])(\{[^}]*\}|\d+)", lambda q: _blank(q.group(0)), m.group(1)) + " ",
               t)
    return t


def _allowed_mask(t: str) -> str:
    for pat, _ in DATE_PATTERNS + ALLOWED:
        t = _mask(t, pat)
    return _mask(t, IDENTIFIER)


def scan_text(text: str, path: Path = Path("<text>")) -> list[Offence]:
    """Offences (typed numbers) in one chapter's source."""
    original = text.split("\n")
    masked = _allowed_mask(prose_only(text)).split("\n")
    found = []
    for n, (line, orig) in enumerate(zip(masked, original), start=1):
        digits = re.findall(r"\d[\d,.]*", line)
        if digits:
            found.append(Offence(path, n, orig, " ".join(d.rstrip(".,") for d in digits)))
    return found


def chapter_sources() -> list[Path]:
    return sorted(p for p in CHAPTERS.rglob("*.md") if ".ipynb_checkpoints" not in p.parts)


def test_no_typed_numbers_in_prose():
    offences = [o for p in chapter_sources() for o in scan_text(p.read_text(encoding="utf-8"), p)]
    assert not offences, (
        f"{len(offences)} line(s) of chapter prose hold numbers typed by hand; glue them "
        "from the analysis (myst_nb.glue + {glue:text}) or, for a named term, add a "
        "pattern with its reason to ALLOWED in tests/test_book.py:\n"
        + "\n".join(str(o) for o in offences)
    )


# Counts written out in words ("ten pilots", "two pre-years") are typed numbers
# too when they count what the analysis counts. Flagged: a number word followed,
# within two words, by a counted unit of this study.
NUMBER_WORDS = (r"two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
                r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|"
                r"seventy|eighty|ninety|hundred|thousand")
COUNTED = (r"(?:local\s+)?authorities|LAs|pilots?|comparators?|councils|pre-?years|"
           r"pre-period\s+years|percentage\s+points|treated|draws|outcomes|measures|"
           r"specifications|files|publishers")
# (not after "wave"/"round", which name the programme's rounds; gaps of at most
# two blanks, so that a count never bridges a masked glue role)
SPELLED_COUNT = (rf"(?<!wave )(?<!wave-)(?<!round )\b(?:about\s|some\s)?(?:{NUMBER_WORDS})"
                 rf"(?:(?:,\s|\s|-)(?:or\s|and\s)?(?:{NUMBER_WORDS}))*\b(?:\s{{1,2}}[\w-]+){{0,2}}?\s{{1,2}}(?:{COUNTED})\b")
# Spelled-out counts that are quotations of published facts, not results.
ALLOWED_SPELLED: list[tuple[str, str]] = [
    (r"\bthirteen\s+percentage\s+points\b",
     "the 2021 evaluation's published kinship-care estimate, quoted as its finding"),
    (r"\bnine\s+of\s+the\s+pilot\s+authorities\b",
     "the number of pilots the 2021 impact analysis used, as published"),
]


def scan_spelled_counts(text: str, path: Path = Path("<text>")) -> list[Offence]:
    original = text.split("\n")
    t = prose_only(text)
    for pat, _ in ALLOWED_SPELLED:
        t = _mask(t, pat, re.I)
    found = []
    # join lines so that "ten\nauthorities" is seen, then map back to the line
    for m in re.finditer(SPELLED_COUNT, t, re.I):
        line = t.count("\n", 0, m.start()) + 1
        found.append(Offence(path, line, original[line - 1], re.sub(r"\s+", " ", m.group(0))))
    return found


def test_no_counts_spelled_out_in_prose():
    offences = [o for p in chapter_sources() for o in scan_spelled_counts(p.read_text(encoding="utf-8"), p)]
    assert not offences, (
        f"{len(offences)} count(s) spelled out in words in chapter prose; a count of "
        "authorities, pilots, comparators or years is a number the analysis knows: glue it "
        "(or, for a quoted published fact, add it to ALLOWED_SPELLED with the reason):\n"
        + "\n".join(str(o) for o in offences)
    )


@pytest.mark.parametrize("text, flagged", [
    ("We matched ten pilots to their comparators.", True),
    ("With about one hundred and fifty authorities, ten treated, the test holds.", True),
    ("The census leaves two pre-years.", True),
    ("with one, two or five comparators per pilot", True),
    ("Pilots were thirteen percentage points less likely to use kinship care.", False),
    ("A two-way fixed effects regression, one coefficient per year.", False),
    ("Wave two started in September 2017.", False),
    ("so wave two again had                     authorities", False),
    ("the two waves involved {glue:md}`n` authorities", False),
])
def test_spelled_count_scanner(text, flagged):
    assert bool(scan_spelled_counts(text)) is flagged, text


# The scanner itself, on synthetic text.

@pytest.mark.parametrize("text", [
    "The panel holds {glue:text}`n_las` LAs and {glue:text}`share:.1f`% of them.",
    "As {cite:t}`baginsky2017` found, and {numref}`fig-2` shows.",
    "Wave 1 began in November 2014; reporting years end on 31 March.",
    "Pre-years 2015-2017, the year 2014-15, the 2010s, mid-2018.",
    "Children aged 0 to 17; assessments within 45 working days; Section 47 enquiries; s47.",
    "Re-referrals within 12 months, per 10,000 children, COVID-19, the SSDA903 return.",
    "See [the release](https://example.org/v2/table3.csv) and <https://a.b/1>.",
    "The file `cla_2019.csv` and the command `make pdf`.",
    "The model $y_{it} = \\alpha_i + \\beta_1 D_{it}$ holds.",
    "1. first item\n2. second item",
    "---\ntitle: x\nversion: 3\n---\nNo digits here.",
    "```{code-cell} ipython3\nx = 42\n```\nProse.",
    ":::{note}\n:class: c1\nAll fine.\n:::",
    "```{figure} ../_static/fig1.png\n---\nname: fig-1\nwidth: 80%\n---\nA caption without numbers.\n```",
    "<!-- 13 in a comment -->\n% 14 in a MyST comment\n(fig-3)=\n",
])
def test_scanner_allows(text):
    assert scan_text(text) == []


@pytest.mark.parametrize("text, digits", [
    ("Kinship care fell by 13 percentage points.", "13"),
    ("The estimate is 0.42 (95% interval 0.1 to 0.7).", "0.42 95 0.1 0.7"),
    ("We matched each pilot to 3 comparators.", "3"),
    ("Of the 152 LAs, 10 were pilots.", "152 10"),
    ("The p-value was `0.03`.", "0.03"),
    ("```{admonition} Finding 2\nSigns of Safety cut re-referrals by 4 points.\n```", "2"),
    ("$p < 0.05$ throughout.", "0.05"),
])
def test_scanner_flags(text, digits):
    found = scan_text(text)
    assert found, text
    assert " ".join(o.digits for o in found).startswith(digits.split()[0])


def test_scanner_reports_file_and_line(tmp_path):
    p = tmp_path / "ch.md"
    p.write_text("---\na: 1\n---\n# Title\n\nFine.\nNot fine: 7 LAs.\n", encoding="utf-8")
    (o,) = scan_text(p.read_text(), p)
    assert (o.line, o.digits) == (7, "7")
    assert str(o).endswith(":7: '7' in: Not fine: 7 LAs.")


# ---------------------------------------------------------------------------
# Citations and table of contents
# ---------------------------------------------------------------------------



def test_toc_files_exist():
    missing = [f for f in toc_files() if not any((ROOT / (f + ext)).exists() for ext in ("", ".md", ".ipynb"))]
    assert not missing, f"_toc.yml names files that do not exist: {missing}"


def test_references_page_is_last_appendix():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    last = toc["parts"][-1]
    assert last["caption"] == "Appendices"
    assert last["chapters"][-1]["file"] == "chapters/references"
    assert "{bibliography}" in (CHAPTERS / "references.md").read_text()


def _bib_entries() -> dict:
    from pybtex.database import parse_file

    return parse_file(str(ROOT / "references.bib"), bib_format="bibtex").entries


def test_bibliography_entries_complete():
    entries = _bib_entries()
    problems = []
    for key, e in entries.items():
        f = {k.lower() for k in e.fields}
        if "title" not in f or "year" not in f:
            problems.append(f"{key}: needs title and year")
        if not e.persons.get("author") and "author" not in f:
            problems.append(f"{key}: needs an author")
        if not ({"doi", "url"} & f):
            problems.append(f"{key}: needs a doi or url so readers can find it")
        if e.type == "article" and not {"journal", "volume", "pages"} <= f:
            problems.append(f"{key}: an article needs journal, volume and pages")
    assert not problems, "\n".join(problems)


def test_every_citation_resolves():
    keys = set(_bib_entries())
    cited = {}
    for p in chapter_sources():
        for n, line in enumerate(p.read_text(encoding="utf-8").split("\n"), start=1):
            for m in re.finditer(r"\{cite(?::[a-z]+)?\}`([^`]*)`", line):
                for k in m.group(1).split(","):
                    cited.setdefault(k.strip(), f"{p.relative_to(ROOT)}:{n}")
    unknown = {k: where for k, where in cited.items() if k not in keys}
    assert not unknown, f"citations not in references.bib: {unknown}"


# ---------------------------------------------------------------------------
# 2. The PDF
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pdf_text():
    from analysis.book.browser import find_chromium

    _require_or_skip(find_chromium() is not None, "no headless Chromium: make pdf cannot run here")
    _require_or_skip(PDF.exists(), f"{PDF} not built: run make pdf")
    sources = [ROOT / "_toc.yml", ROOT / "_config.yml", *chapter_sources()]
    newest = max(sources, key=lambda p: p.stat().st_mtime)
    _require_or_skip(PDF.stat().st_mtime >= newest.stat().st_mtime,
                     f"{PDF} is older than {newest.relative_to(ROOT)}: run make pdf")
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(str(PDF))
    return [page.extract_text() or "" for page in reader.pages]


def _norm(s: str) -> str:
    import unicodedata

    s = unicodedata.normalize("NFKC", s).replace("\u2019", "'").replace("\u2018", "'")
    return re.sub(r"\s+", " ", s).strip()


def _titles() -> list[str]:
    titles = []
    for f in toc_files():
        src = ROOT / (f + ".md")
        if not src.exists():
            continue
        m = re.search(r"(?m)^# (.+)$", src.read_text(encoding="utf-8"))
        if m:
            title = re.sub(r"\{[^}]*\}`[^`]*`", "", m.group(1))  # roles in a title
            titles.append(_norm(re.sub(r"[*_`]", "", title)))
    return titles


@pytest.mark.book
def test_pdf_page_count_in_range(pdf_text):
    n_docs = len(toc_files())
    # every chapter starts on a new page; a chapter over 30 pages means the
    # print layout broke (a table or figure spilling page after page).
    assert n_docs <= len(pdf_text) <= 30 * n_docs, (
        f"{len(pdf_text)} pages for {n_docs} chapters")


@pytest.mark.book
def test_pdf_first_page_is_title_page(pdf_text):
    title = yaml.safe_load((ROOT / "_config.yml").read_text())["title"]
    assert _norm(title) in _norm(pdf_text[0]), pdf_text[0][:300]
    # no navigation chrome on paper
    for chrome in ("Skip to main content", "Search Ctrl+K", "Back to top"):
        assert chrome not in pdf_text[0]


@pytest.mark.book
def test_pdf_holds_every_chapter_in_order(pdf_text):
    text = _norm(" ".join(pdf_text[1:]))
    pos = -1
    for title in _titles()[1:]:
        at = text.find(title, pos + 1)
        assert at > pos, f"chapter {title!r} missing or out of order in the PDF"
        pos = at


@pytest.mark.book
def test_pdf_has_no_error_output(pdf_text):
    text = " ".join(pdf_text)
    for bad in ("Traceback (most recent call last)", "<Figure size"):
        assert bad not in text, f"{bad!r} printed in the PDF"


# ---------------------------------------------------------------------------
# 3. A clean build (slow)
# ---------------------------------------------------------------------------

