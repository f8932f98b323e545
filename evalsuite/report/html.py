"""Building self-contained HTML pages: inline CSS, no scripts, no network, every text escaped.

Text reaches the page only through :func:`markupsafe.escape` (:func:`esc`, and
``Markup(...).format(...)``, which escapes its arguments); markup produced here is a
:class:`markupsafe.Markup`, so it is not escaped twice.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Iterable, Sequence
from pathlib import Path

from markupsafe import Markup, escape

__all__ = ["CSS", "Markup", "esc", "figure", "img", "join", "link", "page", "table", "tag"]

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0; color: #1d1d1f;
       background: #fafafa; }
main { max-width: 1352px; margin: 0 auto; padding: 16px 24px 48px; }
.tw { max-width: 100%; overflow-x: auto; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.banner { background: #b00020; color: #fff; padding: 12px 16px; font-weight: 600; border-radius: 6px; margin: 8px 0 12px; }
.banner small { display: block; font-weight: 400; margin-top: 4px; }
.ok { background: #e6f4ea; color: #0d652d; padding: 10px 14px; border-radius: 6px; font-weight: 600; }
.fail { background: #fce8e6; color: #a50e0e; padding: 10px 14px; border-radius: 6px; font-weight: 600; }
.note { color: #555; font-size: 12.5px; }
table { border-collapse: collapse; margin: 6px 0 14px; background: #fff; font-size: 13px; }
th, td { border: 1px solid #d7d7d7; padding: 4px 8px; text-align: left; vertical-align: top; overflow-wrap: break-word; }
th { background: #f0f0f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.bad td { background: #fdecea; }
code { background: #f0f0f3; padding: 0 3px; border-radius: 3px; word-break: break-all; }
.figs { display: flex; flex-wrap: wrap; gap: 16px; }
.figs figure { max-width: calc(50% - 8px); box-sizing: border-box; }
figure { margin: 0; background: #fff; border: 1px solid #e0e0e0; padding: 8px; border-radius: 6px; max-width: 100%; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #444; max-width: 640px; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.side > div { min-width: 0; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; overflow-wrap: anywhere; }
details { margin: 6px 0 12px; } summary { cursor: pointer; color: #333; font-weight: 600; }
ul.verdicts { margin: 4px 0 8px; padding-left: 20px; } ul.verdicts li { margin: 2px 0; }
.v-supported { color: #0d652d; font-weight: 700; } .v-contradicted { color: #a50e0e; font-weight: 700; }
.v-inconclusive { color: #8a5a00; font-weight: 700; } .v-not-measurable { color: #555; font-weight: 700; }
[class^="v-"] { white-space: nowrap; }
"""


def esc(x: object) -> Markup:
    """``x`` as HTML text (``&``, ``<``, ``>``, quotes escaped by :func:`markupsafe.escape`);
    :class:`~markupsafe.Markup` passes through, ``None`` is the empty string."""
    return escape("" if x is None else x)


def tag(name: str, content: object = "", cls: str | None = None, **attrs: str) -> Markup:
    """``<name attrs>content</name>`` with escaped attribute values and content (``class_`` → ``class``)."""
    a = Markup("").join(Markup(' {}="{}"').format(k.rstrip("_"), v) for k, v in attrs.items())
    c = Markup(' class="{}"').format(cls) if cls else Markup("")
    return Markup("<{0}{1}{2}>{3}</{0}>").format(Markup(name), c, a, esc(content))


def join(parts: Iterable[object]) -> Markup:
    """Concatenate escaped parts."""
    return Markup("").join(esc(p) for p in parts)


def table(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    numeric: Sequence[bool] | None = None,
    row_classes: Sequence[str] | None = None,
) -> Markup:
    """An HTML table (in a ``div.tw`` that scrolls sideways itself, so a wide table never widens the
    page); cells are escaped unless they are :class:`~markupsafe.Markup`."""
    head = Markup("").join(Markup("<th>{}</th>").format(h) for h in headers)
    body = []
    for i, r in enumerate(rows):
        cells = Markup("").join(
            Markup('<td class="num">{}</td>').format(c)
            if numeric and j < len(numeric) and numeric[j]
            else Markup("<td>{}</td>").format(c)
            for j, c in enumerate(r)
        )
        cls = Markup(' class="{}"').format(row_classes[i]) if row_classes and row_classes[i] else ""
        body.append(Markup("<tr{}>{}</tr>").format(cls, cells))
    return Markup('<div class="tw"><table><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>').format(
        head, Markup("").join(body)
    )


def img(
    src: str, alt: str, base: Path | None = None, embed: bool = False, width: int | None = None
) -> Markup:
    """An ``<img>``: ``src`` relative to the page's folder ``base``, or embedded as a data URI.

    Raises:
        FileNotFoundError: when ``embed`` is set and the file does not exist.
    """
    if embed:
        if base is None:
            raise ValueError("img(embed=True) needs the page folder 'base'")
        path = base / src
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        src = f"data:{mime};base64,{data}"
    w = Markup(' width="{}"').format(int(width)) if width else ""
    return Markup('<img src="{}" alt="{}"{}>').format(src, alt, w)


def figure(image: Markup, caption: object, links: Markup | str = "") -> Markup:
    """A ``<figure>`` with a caption (escaped) and optional extra markup (links)."""
    return Markup("<figure>{}<figcaption>{} {}</figcaption></figure>").format(esc(image), caption, links)


def link(href: str, text: object) -> Markup:
    """``<a href>`` to a relative path."""
    return Markup('<a href="{}">{}</a>').format(href, esc(text))


def page(title: str, body: Iterable[object]) -> str:
    """A complete HTML5 document with the inline stylesheet and no scripts."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' data: file:; "
        "style-src 'unsafe-inline'\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
        + "\n".join(str(esc(b)) for b in body)
        + "\n</main></body></html>\n"
    )
