"""The `rgflow` command line as a whole: bad output paths for every command refused before
any work (one line, exit 2), options placed before a sub-command, a full disk at the end
of a run."""

from pathlib import Path

import pytest
from conftest import assert_one_error_line

from rgflow.core.npzio import read_npz
from rgflow.tui.__main__ import main

# each asks for far more work than a test could wait for: the refusal must come first
LONG_RUNS = {
    "sample": lambda out: ["sample", "--L", "256", "--T", "1:4:50", "--n", "100000",
                           "--out", out],
    "train": lambda out: ["train", "--data", "{data}", "--steps", "100000000", "--out", out],
    "rg": lambda out: ["rg", "--data", "{data}", "--out", out],
    "run": lambda out: ["run", "--steps", "1000000000", "--save", out],
    "reproduce": lambda out: ["reproduce", "--preset", "paper", "--out", out[:-4]],
}


def _bad_outputs(tmp_path):
    (tmp_path / "plain").write_text("a regular file")
    bad = [str(tmp_path / "plain" / "x.npz")]
    bad += [f"{root}/rgflow-test/x.npz" for root in ("/proc", "/sys") if Path(root).is_dir()]
    return bad


@pytest.mark.parametrize("command", sorted(LONG_RUNS))
def test_bad_output_refused_before_work(command, in_tmp, small_dataset, run_cli):
    for out in _bad_outputs(in_tmp):
        argv = [a.replace("{data}", str(small_dataset)) for a in LONG_RUNS[command](out)]
        rc, _, err = run_cli(argv)
        assert rc == 2, (argv, err)
        assert_one_error_line(err, command)


@pytest.mark.parametrize("argv", [
    ["--set", "L=8", "run", "--steps", "2", "--save", "q"],
    ["--saves-dir", "other", "ls"],
    ["--preset", "quick", "info", "s1"],
    ["--threads", "1", "sample", "--n", "1", "--out", "x.npz"],
    ["open", "s1", "--preset", "big"],
    ["open", "s1", "--set", "L=8"],
])
def test_misplaced_options_are_refused(argv, in_tmp, run_cli):
    rc, _, err = run_cli(argv)
    assert rc == 2
    assert_one_error_line(err)
    assert list(in_tmp.iterdir()) == []  # nothing was run, nothing written


def test_options_after_the_command_are_honoured(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    saves = tmp_path / "other"
    assert main(["run", "--set", "L=8", "--steps", "2", "--saves-dir", str(saves),
                 "--save", "q"]) == 0
    _, meta = read_npz(saves / "q.npz")
    assert meta["config"]["L"] == 8
    capsys.readouterr()
    assert main(["ls", "--saves-dir", str(saves)]) == 0
    assert capsys.readouterr().out.startswith("q ")


@pytest.mark.parametrize("command", ["sample", "train", "run"])
def test_full_disk_at_the_end_of_a_run_saves_a_fallback(command, tmp_path, small_dataset,
                                                          full_disk_in, spare_dir, run_cli):
    """ENOSPC injected for files in the output folder (after the checks passed): one line,
    exit 2, and the finished result is in the temporary folder, named in the message."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    full_disk_in(out_dir)
    out = out_dir / "r.npz"
    argv = {"sample": ["sample", "--L", "4", "--n", "3", "--out", out],
            "train": ["train", "--data", small_dataset, "--steps", "3", "--batch", "10",
                      "--out", out],
            "run": ["run", "--set", "L=8", "--steps", "2", "--save", out]}[command]
    rc, _, err = run_cli(argv)
    err = err.strip().splitlines()[-1]
    assert rc == 2 and "No space left on device" in err
    spares = list(spare_dir.iterdir())
    assert len(spares) == 1 and str(spares[0]) in err
    assert read_npz(spares[0])[0]  # a complete, readable file
    assert list(out_dir.iterdir()) == []


def test_flag_aliases_mean_the_same(tmp_path, capsys):
    from rgflow.tui.__main__ import build_parser

    parser = build_parser()
    for new, old in (("--algorithm", "--algo"), ("--threads", "--jobs")):
        value = "wolff" if new == "--algorithm" else "2"
        a = parser.parse_args(["sample", new, value, "--out", "x.npz"])
        b = parser.parse_args(["sample", old, value, "--out", "x.npz"])
        assert vars(a) == vars(b)
    a = parser.parse_args(["reproduce", "--threads", "3"])
    assert a.threads == 3 and parser.parse_args(["reproduce", "--jobs", "3"]).threads == 3


@pytest.mark.parametrize(("argv", "words"), [
    (["train", "--data", "d.npz", "--momentum", "0.5"], "--momentum applies to --optimizer sgd"),
    (["train", "--data", "d.npz", "--cd", "--chains", "4"], "--chains applies to --pcd"),
    (["train", "--data", "d.npz", "--cd", "--fresh-chain-field"], "applies to --pcd only"),
    (["rg", "--data", "d.npz", "--rule", "average", "--seed", "3", "--out", "o.npz"],
     "--seed applies to --rule majority"),
    (["rg", "--data", "d.npz", "--rule", "majority", "--b", "3", "--seed", "3", "--out",
      "o.npz"], "--seed applies to --rule majority with an even --b"),
    (["run", "--set", "lr0=1", "--steps", "1", "--save", "q"], "did you mean 'lr'?"),
    (["run", "--set", "L=x", "--steps", "1", "--save", "q"], "L must be a whole number"),
])
def test_options_that_do_not_apply_are_refused(argv, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [*argv, "--out", str(tmp_path / "o.npz")] if argv[0] == "train" else argv
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "saves" / "q.npz").exists()


def test_run_help_lists_every_setting_with_its_default(capsys):
    from dataclasses import fields

    from rgflow.core.config import SessionConfig

    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for f in fields(SessionConfig):
        assert f"{f.name}=" in text, f.name
    assert "lr=0.001" in text and "L=32" in text


@pytest.mark.parametrize("command", ["sample", "rg", "train", "bench", "run", "resume", "info",
                                     "ls", "open", "reproduce", "calibrate"])
def test_every_command_has_a_description(command, capsys):
    from rgflow.tui.__main__ import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    parser = sub.choices[command]
    assert parser.description and len(parser.description) > 40, command


def test_the_command_names_known_without_the_parser_are_its_sub_commands():
    from rgflow.tui.__main__ import COMMAND_NAMES, build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert COMMAND_NAMES == set(sub.choices)


@pytest.mark.parametrize("argv", [
    [], ["--fps", "8"], ["--fp", "8"], ["--set", "L=16", "--set", "T=2"], ["--preset=quick"],
    ["--theme", "nord", "--threads", "1", "--autosave-minutes", "0"],
])
def test_app_options_alone_parse_as_with_every_sub_command(argv):
    """`rgflow` with app options alone skips building the sub-commands' parsers: the same
    namespace as the full parser gives."""
    from rgflow.tui.__main__ import _AppOnlyParser, build_parser, parse_args

    parser, args = parse_args(argv)
    assert isinstance(parser, _AppOnlyParser)
    assert vars(args) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["nonsense"], ["--fps", "-1"], ["--fps"], ["--set", "L=8", "bogus"], ["--no-such-option"],
    ["--theme", "serve"], ["--help"], ["-h"], ["--he"], ["ls", "--help"],
])
def test_anything_else_is_parsed_and_reported_by_the_full_parser(argv, capsys):
    from rgflow.tui.__main__ import build_parser, parse_args

    def outcome(parse):
        try:
            result = ("ok", vars(parse()))
        except SystemExit as exc:
            result = ("exit", exc.code)
        return result, capsys.readouterr()

    got = outcome(lambda: parse_args(argv)[1])
    assert got == outcome(lambda: build_parser().parse_args(argv))
    assert got[1].out or got[1].err or got[0][0] == "ok"
