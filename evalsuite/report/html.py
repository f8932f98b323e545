"""Building self-contained HTML pages: inline CSS, no scripts, no network, every text escaped.

Text reaches the page only through :func:`esc` (or :func:`table`/:func:`tag`, which call it);
markup produced here is wrapped in :class:`Markup` so it is not escaped twice.
"""

from __future__ import annotations

import base64
import html
import mimetypes
from collections.abc import Iterable, Sequence
from pathlib import Path

CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0; color: #1d1d1f;
       background: #fafafa; }
main { max-width: 1400px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.banner { background: #b00020; color: #fff; padding: 12px 16px; font-weight: 600; border-radius: 6px; margin: 8px 0 12px; }
.banner small { display: block; font-weight: 400; margin-top: 4px; }
.ok { background: #e6f4ea; color: #0d652d; padding: 10px 14px; border-radius: 6px; font-weight: 600; }
.fail { background: #fce8e6; color: #a50e0e; padding: 10px 14px; border-radius: 6px; font-weight: 600; }
.note { color: #555; font-size: 12.5px; }
table { border-collapse: collapse; margin: 6px 0 14px; background: #fff; font-size: 13px; }
th, td { border: 1px solid #d7d7d7; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.bad td { background: #fdecea; }
code { background: #f0f0f3; padding: 0 3px; border-radius: 3px; word-break: break-all; }
.figs { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; background: #fff; border: 1px solid #e0e0e0; padding: 8px; border-radius: 6px; max-width: 100%; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #444; max-width: 640px; }
.side { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.side > div { min-width: 0; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; }
"""


class Markup(str):
    """A string that is already HTML (produced by this module)."""


def esc(x: object) -> Markup:
    """``x`` as HTML text (``&``, ``<``, ``>``, quotes escaped); :class:`Markup` passes through."""
    if isinstance(x, Markup):
        return x
    return Markup(html.escape("" if x is None else str(x), quote=True))


def tag(name: str, content: object = "", cls: str | None = None, **attrs: str) -> Markup:
    """``<name attrs>content</name>`` with escaped attribute values and content."""
    a = "".join(f' {k.rstrip("_")}="{html.escape(str(v), quote=True)}"' for k, v in attrs.items())
    c = f' class="{html.escape(cls, quote=True)}"' if cls else ""
    return Markup(f"<{name}{c}{a}>{esc(content)}</{name}>")


def join(parts: Iterable[object]) -> Markup:
    """Concatenate escaped parts."""
    return Markup("".join(esc(p) for p in parts))


def table(
    headers: Sequence[object],
    rows: Iterable[Sequence[object]],
    numeric: Sequence[bool] | None = None,
    row_classes: Sequence[str] | None = None,
) -> Markup:
    """An HTML table; cells are escaped unless they are :class:`Markup`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for i, r in enumerate(rows):
        cells = "".join(
            f'<td class="num">{esc(c)}</td>'
            if numeric and j < len(numeric) and numeric[j]
            else f"<td>{esc(c)}</td>"
            for j, c in enumerate(r)
        )
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>{cells}</tr>")
    return Markup(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


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
    w = f' width="{int(width)}"' if width else ""
    return Markup(f'<img src="{html.escape(src, quote=True)}" alt="{html.escape(alt, quote=True)}"{w}>')


def figure(image: Markup, caption: object, links: Markup | str = "") -> Markup:
    """A ``<figure>`` with a caption (escaped) and optional extra markup (links)."""
    return Markup(f"<figure>{image}<figcaption>{esc(caption)} {esc(links)}</figcaption></figure>")


def link(href: str, text: object) -> Markup:
    """``<a href>`` to a relative path."""
    return Markup(f'<a href="{html.escape(href, quote=True)}">{esc(text)}</a>')


def page(title: str, body: Iterable[object]) -> str:
    """A complete HTML5 document with the inline stylesheet and no scripts."""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src 'self' data: file:; "
        "style-src 'unsafe-inline'\">"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body><main>\n"
        + "\n".join(esc(b) for b in body)
        + "\n</main></body></html>\n"
    )
