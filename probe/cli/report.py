"""``probe report``: a casebook as one self-contained HTML page."""

from __future__ import annotations

import sys
from pathlib import Path

from ..cases.casebook import Casebook
from .common import InputError, say


def cmd_report(args) -> int:
    if not Path(args.folder).is_dir():
        raise InputError(f"casebook folder {args.folder!r} does not exist")
    try:
        book = Casebook(args.folder, create=False)
    except NotADirectoryError as err:
        raise InputError(str(err)) from None
    out = book.to_html(args.out, title=args.title, verdict=args.verdict, tag=args.tag)
    shown = len(book.list(verdict=args.verdict, tag=args.tag))
    say(f"{shown} of {len(book)} case(s) -> {out.resolve()}")
    for err in book.errors:
        print(f"probe report: skipped unreadable case file {err}", file=sys.stderr)
    return 0


def add_parser(sub) -> None:
    report = sub.add_parser(
        "report", help="write a casebook as one self-contained HTML page",
        description="Render the cases of FOLDER (or those of one verdict/tag) as one HTML file that "
        "opens offline: summary, filters, token strips, charts and diagnosis cards.")
    report.add_argument("folder", metavar="FOLDER", help="the casebook folder")
    report.add_argument("--out", default="probe-report.html", help="the HTML file to write")
    report.add_argument("--verdict", default=None, help="only cases with this verdict")
    report.add_argument("--tag", default=None, help="only cases with this tag")
    report.add_argument("--title", default=None, help="the page title")
    report.set_defaults(func=cmd_report)
