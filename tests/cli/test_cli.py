import json

import pytest

import probe
from probe import cli


def test_help_documents_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(cmd in out for cmd in ("demo", "diagnose", "report")) and "Exit status" in out
    for cmd, flags in (("diagnose", ("--base", "--tuned", "--adapter", "--cases", "--book", "--report")),
                       ("report", ("FOLDER", "--out", "--verdict", "--tag"))):
        with pytest.raises(SystemExit):
            cli.main([cmd, "--help"])
        out = capsys.readouterr().out
        assert all(f in out for f in flags), out


def test_help_loads_no_torch_so_it_answers_at_once():
    """`probe --help` took 8 s importing torch; the parser and `import probe` need none of it
    (measured after: 0.5 s wall for `python -m probe.cli --help` on a busy 2-core machine)."""
    import subprocess
    import sys

    code = ("import sys, probe, probe.cli; probe.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_probe_names_load_on_first_use_and_case_files_still_find_their_types(tmp_path):
    import subprocess
    import sys

    from builders import fake_case

    book = probe.Casebook(tmp_path / "book")
    book.add(fake_case("c1", "lost"))
    code = (f"import probe; b = probe.Casebook({str(tmp_path / 'book')!r}); "
            "print(type(b.get(b.list()[0].id).results['diagnosis']).__name__, callable(probe.diagnose), "
            "probe.checks.__name__, 'Shift' in dir(probe))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["Diagnosis", "True", "probe.diagnosis.checks", "True"]


def test_diagnose_without_a_book_shows_the_table_and_saves_nothing(tiny_dirs, tmp_path, capsys, monkeypatch):
    src = str(tiny_dirs[("gpt2", "bpe", False)])
    cases = _cases(tmp_path / "cases.jsonl", GOOD)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--max-new-tokens", "2",
                     "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "hello" in out and "capital" in out and "not saved" in out
    assert out.count("rN = rank of its first token") == 1  # the cells' notation, explained once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.jsonl"]


def _cases(path, lines):
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


GOOD = [{"id": "hello", "prompt": "Hello", "expected": " the", "tags": ["greet"]},
        {"id": "capital", "prompt": "The capital of France is", "expected": " Paris", "force": " Paris"}]


def test_diagnose_adds_cases_to_the_book_and_writes_a_report(tiny_dirs, tmp_path, capsys):
    src = str(tiny_dirs[("gpt2", "bpe", False)])
    cases = _cases(tmp_path / "cases.jsonl", GOOD)
    code = cli.main(["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--book",
                     str(tmp_path / "book"), "--report", str(tmp_path / "r.html"), "--max-new-tokens", "3",
                     "--tag", "run-1", "--note", "first try", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "verdict" in out and "hello" in out and "capital" in out and "added 2 case(s)" in out
    book = probe.Casebook(tmp_path / "book")
    got = {c.title: c for c in book}
    assert set(got) == {"hello", "capital"}
    assert got["hello"].tags == ("greet", "run-1") and got["hello"].note == "first try"
    assert got["capital"].force == " Paris" and [m.role for m in got["capital"].models] == ["base", "tuned"]
    assert got["capital"].verdict == got["capital"].results["diagnosis"].verdict
    html = (tmp_path / "r.html").read_text()
    assert html.count("<section ") == 2
    # A second run adds, never overwrites: the book keeps both runs.
    assert cli.main(["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--book",
                     str(tmp_path / "book"), "--max-new-tokens", "2", "--quiet"]) == 0
    assert len(probe.Casebook(tmp_path / "book")) == 4


def test_a_case_file_note_is_saved_with_its_case(tiny_dirs, tmp_path, capsys):
    src = str(tiny_dirs[("gpt2", "bpe", False)])
    cases = _cases(tmp_path / "cases.jsonl", [dict(GOOD[0], note="seen in eval 3"), GOOD[1],
                                               {"id": "bad", "prompt": "x", "expected": "y", "note": 3}])
    code = cli.main(["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--book",
                     str(tmp_path / "book"), "--max-new-tokens", "2", "--note", "run 7", "--quiet"])
    assert code == 1 and "field 'note': must be a string" in capsys.readouterr().err
    got = {c.title: c for c in probe.Casebook(tmp_path / "book")}  # read back from the files
    assert got["hello"].note == "seen in eval 3\nrun 7" and got["capital"].note == "run 7"
    assert [s.note for s in probe.read_cases(cases)[:2]] == ["seen in eval 3", ""]


def test_diagnose_with_named_adapters(tiny_dirs, tmp_path, capsys):
    from builders import make_adapter as _make_adapter

    base_dir = tiny_dirs[("llama", "unigram", False)]
    one = _make_adapter(base_dir, tmp_path / "one", seed=1)
    cases = _cases(tmp_path / "c.jsonl", [{"id": "a", "prompt": "x", "expected": " y", "adapter": "one"}])
    code = cli.main(["diagnose", "--base", str(base_dir), "--adapter", f"one={one}", "--adapter",
                     f"two={_make_adapter(base_dir, tmp_path / 'two', seed=2)}", "--cases", str(cases),
                     "--book", str(tmp_path / "b"), "--max-new-tokens", "2", "--quiet"])
    assert code == 0, capsys.readouterr()
    (case,) = probe.Casebook(tmp_path / "b")
    tuned = next(m for m in case.models if m.role == "tuned")
    assert tuned.adapter == f"one={one}"


def test_bad_case_lines_are_named_the_rest_is_saved_and_the_exit_is_1(tiny_dirs, tmp_path, capsys):
    src = str(tiny_dirs[("gpt2", "bpe", False)])
    cases = _cases(tmp_path / "c.jsonl", [GOOD[0], "{not json", {"id": "x", "prompt": ""}])
    code = cli.main(["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--book",
                     str(tmp_path / "b"), "--max-new-tokens", "2", "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "2 case(s) could not be diagnosed" in err
    assert "line 2" in err and "not valid JSON" in err and "field 'prompt'" in err
    assert [c.title for c in probe.Casebook(tmp_path / "b")] == ["hello"]


@pytest.mark.parametrize("argv,message", [
    (["--cases", "nope.jsonl"], "case file 'nope.jsonl' does not exist"),
    (["--base", "/no/such/model"], "cannot load the models"),
])
def test_input_errors_exit_1_saying_why(tiny_dirs, tmp_path, capsys, argv, message):
    src = str(tiny_dirs[("gpt2", "bpe", False)])
    args = {"--base": src, "--tuned": src, "--cases": str(_cases(tmp_path / "c.jsonl", GOOD)),
            "--book": str(tmp_path / "b")}
    args.update(dict(zip(argv[::2], argv[1::2])))
    code = cli.main(["diagnose", *[x for kv in args.items() for x in kv], "--quiet"])
    assert code == 1 and message in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["diagnose", "--base", "x", "--cases", "c", "--book", "b"])  # no --tuned/--adapter
    assert info.value.code == 2 and "--tuned" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["diagnose", "--base", "x", "--tuned", "y", "--adapter", "z", "--cases", "c", "--book", "b"])
    assert info.value.code == 2


def test_report_command(tmp_path, capsys):
    from builders import fake_case

    book = probe.Casebook(tmp_path / "book")
    book.add(fake_case("a", "lost"))
    book.add(fake_case("b", "ok"))
    (tmp_path / "book" / "cases" / "broken.json").write_text("{")
    assert cli.main(["report", str(tmp_path / "book"), "--out", str(tmp_path / "r.html"), "--verdict", "lost"]) == 0
    captured = capsys.readouterr()
    assert "1 of 2 case(s)" in captured.out and "broken.json" in captured.err
    html = (tmp_path / "r.html").read_text()
    assert 'id="case-a"' in html and 'id="case-b"' not in html
    assert cli.main(["report", str(tmp_path / "missing")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_batch_tokens_reaches_diagnose_many_and_a_bad_one_is_an_input_error(tiny_dirs, tmp_path, capsys,
                                                                          monkeypatch):
    import probe.diagnosis.run

    src = str(tiny_dirs[("gpt2", "bpe", False)])
    cases = tmp_path / "c.jsonl"
    cases.write_text('{"id": "a", "prompt": "Hi", "expected": " there"}\n', encoding="utf-8")
    args = ["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--book", str(tmp_path / "b"),
            "--max-new-tokens", "2", "--quiet"]
    seen = []
    real = probe.diagnosis.run.token_batches
    monkeypatch.setattr(probe.diagnosis.run, "token_batches", lambda sizes, budget: seen.append(budget) or real(sizes, budget))
    assert cli.main(args + ["--batch-tokens", "7"]) == 0 and seen == [7]
    assert cli.main(args) == 0 and seen[-1] == probe.diagnosis.batch.BATCH_TOKENS
    assert cli.main(args + ["--batch-tokens", "0"]) == 1
    assert "--batch-tokens must be >= 1" in capsys.readouterr().err


def test_demo_refuses_a_negative_data_limit_before_loading_anything(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PROBE_CACHE", str(tmp_path / "empty"))  # nothing cached: loading would take minutes
    assert cli.main(["demo", "--data-limit", "-1", "--out", str(tmp_path / "r.html")]) == 1
    assert "--data-limit must be >= 0, got -1" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists() and not (tmp_path / "r.html").exists()


class _Workers:
    """An engine whose "workers" load their own pair from the recipe, as Ray's do (no Ray here)."""

    def __init__(self):
        self.pairs = []

    def map_batches(self, fn, batches, *, pair, on_batch=None):
        from probe.models.recipe import pair_recipe, rebuild_pair

        self.pairs.append(pair)
        base, tuned = rebuild_pair(pair_recipe(*pair))
        out = []
        for i, batch in enumerate(batches):
            out.append(fn(base, tuned, batch))
            if on_batch is not None:
                on_batch(i, out[-1])
        return out

    def close(self):
        pass


def test_diagnose_and_shift_with_an_engine_load_no_weights_in_the_driver(tiny_dirs, tmp_path, capsys, monkeypatch):
    from probe.cli import diagnose, shift

    src = str(tiny_dirs[("gpt2", "bpe", False)])
    cases = _cases(tmp_path / "cases.jsonl", GOOD)
    workers = _Workers()
    for module in (diagnose, shift):
        monkeypatch.setattr(module, "engine_from", lambda args: workers if args.ray else None)
    run = ["diagnose", "--base", src, "--tuned", src, "--cases", str(cases), "--max-new-tokens", "3", "--quiet"]
    assert cli.main(run + ["--book", str(tmp_path / "local")]) == 0
    assert cli.main(run + ["--book", str(tmp_path / "ray"), "--ray"]) == 0
    [(base, tuned)] = workers.pairs
    assert not base.has_weights and not tuned.has_weights  # the driver held no weights
    local, remote = ({c.title: c for c in probe.Casebook(tmp_path / name)} for name in ("local", "ray"))
    assert {k: c.results["diagnosis"].to_dict() for k, c in remote.items()} == \
           {k: c.results["diagnosis"].to_dict() for k, c in local.items()}
    assert [m.fingerprint for m in remote["capital"].models] == [m.fingerprint for m in local["capital"].models]
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hello\nThe capital of France is\n")
    assert cli.main(["shift", "--base", src, "--tuned", src, "--prompts", str(prompts), "--ray",
                     "--max-new-tokens", "3", "--out", str(tmp_path / "s.json")]) == 0
    assert not workers.pairs[-1][1].has_weights
    # cases with checks run a regression here, not on the engine: then the driver loads the weights
    assert cli.main(["shift", "--base", src, "--tuned", src, "--prompts", str(cases), "--ray",
                     "--max-new-tokens", "3", "--out", str(tmp_path / "s2.json")]) == 0
    assert workers.pairs[-1][1].has_weights
    capsys.readouterr()
