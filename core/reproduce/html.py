"""report.html: report.md rendered to one self-contained HTML file, the figures embedded as
base64 data, for reading results copied off a server.

Rendering uses markdown-it-py (CommonMark with tables), already installed with rich; the
Markdown is ours, so raw HTML (the <br> in table cells) is allowed through."""

import base64
import html
import re
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.55em; vertical-align: top; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #ddd; }
blockquote { border-left: 4px solid #d62728; background: #fff4f4; margin: 1em 0;
             padding: 0.4em 1em; }
code { background: #f5f5f5; padding: 0 0.2em; }
"""

_IMG = re.compile(r'<img src="([^"]+\.png)"')


def _embed(match: re.Match, base_dir: Path) -> str:
    path = base_dir / html.unescape(match.group(1))
    try:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError:
        return match.group(0)  # a missing figure stays a (broken) link, not a crash
    return f'<img src="data:image/png;base64,{data}"'


def markdown_to_html(markdown: str, title: str, base_dir: Path) -> str:
    """A complete HTML page; PNG images referenced relative to base_dir are embedded."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    body = _IMG.sub(lambda m: _embed(m, Path(base_dir)), body)
    return (f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
            f"<body>\n{body}</body>\n</html>\n")
