"""The offline HTML report: self-contained, escaped, filterable, small enough for 100 cases."""

import re

import probe
from builders import fake_case
from probe.render.report import casebook_html

HOSTILE = "<img src=x onerror=alert(1)>"


def _external_refs(html: str) -> list[str]:
    refs = re.findall(r"""(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html)
    urls = re.findall(r"https?://[^\s\"'<>]+", html)
    return [r for r in refs if not r.startswith("#")] + urls


def test_report_is_self_contained_and_shows_every_case(tmp_path):
    book = probe.Casebook(tmp_path / "book")
    for i, verdict in enumerate(["lost", "never_had", "not_triggered", "ok"]):
        book.add(fake_case(f"case-{i}", verdict, tags=("capitals", f"t{i}")))
    out = book.to_html(tmp_path / "r.html")
    html = out.read_text(encoding="utf-8")
    assert _external_refs(html) == []  # no CDN, no remote script, image or stylesheet
    assert html.count("<section ") == 4 and html.count('class="probe-case"') == 4
    assert html.count("P(expected token) after the prompt</div><div class=\"probe-strip\">") == 4 * 2  # both models
    assert html.count('class="probe-strip"') == 4 * (4 + 2)  # the four runs and P(expected) of each case
    for verdict in ("lost", "never_had", "not_triggered", "ok"):
        assert f'data-verdict="{verdict}"' in html
    assert "capitals: 4" in html  # cases by tag
    assert html.count('<input type="checkbox"') == 4 and '<option value="t2">' in html


def test_only_one_verdict_or_tag(tmp_path):
    book = probe.Casebook(tmp_path)
    book.add(fake_case("a", "lost", tags=("x",)))
    book.add(fake_case("b", "ok", tags=("y",)))
    html = book.to_html(tmp_path / "r.html", verdict="lost").read_text()
    assert 'id="case-a"' in html and 'id="case-b"' not in html
    html = book.to_html(tmp_path / "r.html", tag="y").read_text()
    assert 'id="case-b"' in html and 'id="case-a"' not in html


def test_every_piece_of_user_and_model_text_is_escaped(tmp_path):
    case = fake_case("h", "lost", tags=(HOSTILE, 'q"uote'), note=HOSTILE, word=HOSTILE)
    case = probe.Case.from_result(case.results, id="h", note=HOSTILE, tags=case.tags, title=HOSTILE,
                                  verdict=HOSTILE, prompt=HOSTILE, expected=HOSTILE)
    html = casebook_html([case], title=HOSTILE, intro=HOSTILE, errors=[HOSTILE])
    assert "<img" not in html and html.count("&lt;img src=x onerror=alert(1)&gt;") > 10
    script = html[html.index("<script>"):]
    assert "img" not in script  # no model or user text ever reaches the script


def test_a_hundred_case_report_stays_under_10_mb(tmp_path):
    # 100 diagnoses x 4 runs x 48 tokens (probe diagnose's default length), top-5 each, CJK text.
    cases = [fake_case(f"case-{i:03d}", ("lost", "never_had", "ok", "not_triggered")[i % 4],
                       word=" 東京 token", n_tokens=48) for i in range(100)]
    size = len(casebook_html(cases).encode("utf-8"))
    assert size < 10 * 2**20, f"{size / 2**20:.1f} MiB"


def test_unreadable_files_are_listed_in_the_report(tmp_path):
    book = probe.Casebook(tmp_path)
    book.add(fake_case("good"))
    (tmp_path / "cases" / "bad.json").write_text("{nope")
    html = book.to_html(tmp_path / "r.html").read_text()
    assert 'id="case-good"' in html and "bad.json" in html and "could not be read" in html
