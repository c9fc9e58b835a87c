"""What rlcf prints for people: tables piped to files, progress bars in an 80-column terminal, phase labels while
the count stands still, and the LLM evaluation table."""

from __future__ import annotations

import io
import logging
import re


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, so rlcf draws its rich bar into it."""

    def isatty(self) -> bool:
        return True


def _screen_lines(text: str) -> list[str]:
    """The lines a terminal would show last: escape codes dropped, each line's last redraw kept."""
    lines = []
    for line in ANSI.sub("", text).split("\n"):
        line = line.split("\r")[-1].rstrip()
        if line:
            lines.append(line)
    return lines


def _terminal(monkeypatch) -> _Terminal:
    """An 80-column terminal as stderr, with bars on. Called in the test itself: pytest's output capture puts its own
    stderr back between a fixture's set-up and the test."""
    import rlcf.progress

    screen = _Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(rlcf.progress, "_quiet", False)
    return screen


# -- tables piped to a file --------------------------------------------------------------------------------------


def test_a_table_piped_to_a_file_keeps_every_row_on_one_line(capsys, monkeypatch):
    from rlcf.cli_parts import print_table

    monkeypatch.setenv("COLUMNS", "80")  # what a terminal-less rich console would otherwise wrap at
    run_id = "runs/cfcql/mpe_spread_force-medium-replay-20261128-101500"
    status = "finished: 3000 steps, normalized score 38.2 over 32 episodes, checkpoint step_3000.pt"
    print_table("rlcf runs", ("run", "algo", "status"), [(run_id, "cfcql", status), ("runs/bc/x", "bc", "running")])
    lines = capsys.readouterr().out.splitlines()
    assert any(run_id in line and status in line for line in lines), "\n".join(lines)
    assert len(lines) == 7, "title, three rules, header and two rows: no wrapped continuation lines"
    assert all(line == line.rstrip() for line in lines)


# -- progress bars -----------------------------------------------------------------------------------------------


def test_progress_bar_at_80_columns_keeps_counts_rate_and_eta(monkeypatch):
    from rlcf.progress import progress

    terminal = _terminal(monkeypatch)
    with progress("cfcql mpe_spread_force-medium-replay-seed-1234", total=10000) as bar:
        bar.advance(1234, critic=0.123456, actor=-12.3456, cql=1.23456, behaviour=0.5)
    lines = _screen_lines(terminal.getvalue())
    assert lines, repr(terminal.getvalue())
    last = lines[-1]
    assert all(len(line) <= 80 for line in lines), lines
    assert "1234/10000" in last, last
    assert re.search(r"\d+(\.\d+)?/s|\?/s", last), f"a rate: {last!r}"
    assert re.search(r"\d:\d\d:\d\d<(\d:\d\d:\d\d|-:--:--)", last), f"elapsed<remaining: {last!r}"
    assert last.startswith("cfcql mpe_spread") and "…" in last, f"the description is cut, not the numbers: {last!r}"


def test_progress_shows_a_phase_while_the_count_stands_still(monkeypatch):
    from rlcf.progress import progress

    terminal = _terminal(monkeypatch)
    with progress("cfcql spread", total=10) as bar:
        with bar.phase("compiling…"):
            terminal.seek(0)
            terminal.truncate()
            bar._bar.refresh()
            during = _screen_lines(terminal.getvalue())[-1]
        bar.advance(10)
    assert "compiling…" in during and "0/10" in during, during
    assert "compiling…" not in _screen_lines(terminal.getvalue())[-1], "the label goes when the phase ends"


def test_quiet_progress_logs_a_phase_line(caplog, monkeypatch):
    import rlcf.progress

    monkeypatch.setattr(rlcf.progress, "_quiet", True)
    with caplog.at_level(logging.INFO, logger="rlcf"), rlcf.progress.progress("cfcql x", total=4) as bar:
        with bar.phase("final evaluation…"):
            pass
    assert "cfcql x: final evaluation… (0/4)" in caplog.messages


def test_training_says_when_it_compiles_and_when_it_evaluates(tmp_path, caplog, monkeypatch):
    """The step loop labels the phases where the count stands still: the first (compiling) step and evaluations."""
    import rlcf.progress
    from rlcf.algorithm import train
    from toy_plugin import ToyRegression

    monkeypatch.setattr(rlcf.progress, "_quiet", True)
    monkeypatch.setattr(ToyRegression, "compiles", property(lambda self: True))
    experiment = {"algo": "toy_plugin:ToyRegression",
                  "run": {"out_dir": str(tmp_path), "total_steps": 4, "eval_every": 2, "device": "cpu"}}
    with caplog.at_level(logging.INFO, logger="rlcf"):
        train(experiment)
    phases = [m.split(": ", 1)[1] for m in caplog.messages if m.startswith("toy_plugin:ToyRegression") and "…" in m]
    assert phases == ["compiling… (0/4)", "evaluating… (1/4)", "final evaluation… (3/4)"], caplog.messages


# -- the LLM evaluation table ------------------------------------------------------------------------------------


def _llm_results(*names: str) -> dict:
    from rlcf.eval.llm import PairScores, SplitScores

    splits = {"pos": SplitScores("pos", 40, 1.0, 0.0, 0.512, 1.0), "neg": SplitScores("neg", 40, 0.225, 0.225, -0.55, 0.975),
              "random": SplitScores("random", 40, 0.985, 0.015, 0.3, 1.0)}
    pairs = {"real": PairScores("real", 30, 0.5, 1.0), "cf": PairScores("cf", 30, 0.28, 1.0), "pair": PairScores("pair", 30, 0.17, 1.0)}
    return {name: (pairs if "pairs" in name else splits) for name in names}


def test_llm_table_fits_80_columns_with_run_folder_names():
    from rlcf.eval.llm import format_split_table

    names = ("grounded_qa-20261128-101500", "grounded_qa_pairs-20261128-101500")
    lines = format_split_table(_llm_results(*names)).splitlines()
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
    assert all(any(line == name for line in lines) for name in names), "each run's name whole, on its own line"
    header = next(line for line in lines if "accuracy" in line)
    edge = header.index("accuracy") + len("accuracy")
    scored = [line for line in lines if line.endswith("%")]
    assert len(scored) == 6 and all(line[edge - 1] == "%" for line in scored), "accuracy cells end under their header"


def test_llm_table_with_short_names_is_one_row_per_model_and_split():
    from rlcf.eval.llm import format_split_table

    lines = format_split_table(_llm_results("base", "defacto")).splitlines()
    assert lines[0].split() == ["model", "split", "rows", "accuracy", "abstention", "grounding", "format"]
    assert lines[1].split() == ["base", "pos", "40", "100.0%", "0.0%", "0.512", "100.0%"]
    assert len(lines) == 7 and len({len(line) for line in lines[1:]}) == 1, "\n".join(lines)
