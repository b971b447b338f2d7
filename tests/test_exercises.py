"""Exercises: every notebook follows the form, no solution runs, and student copies carry none.

The form (labkit/authoring/exercises.py): an ``exercise`` code cell, a ``self-check`` code
cell, then a ``solution`` markdown cell holding one ```python fence in a collapsed
``<details>`` block. Whether each solution really passes its self-check is run in
test_student_copies.py (slow: it executes every notebook's solved copy).
"""

from pathlib import Path

import nbformat
import pytest

from labkit.authoring import exercises
from labkit.classroom import verdicts

from support.helpers import REPO, lab

CHECK = "print('✓ right' if str(answer).endswith('_42') else '✗ Not yet: set answer')"


def cell(kind, source, tag=None, output=None):
    new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    c = new(source)
    if tag:
        c.metadata["tags"] = [tag]
    if output is not None:
        c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
        c.execution_count = 3
    return c


def solution(code, why=""):
    return f"<details><summary>Solution</summary>\n\n```python\n{code}\n```\n{why}\n</details>"


def synthetic_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        cell("markdown", "# Title\n\n## Exercise: set the answer"),
        cell("code", "answer = ...  # your code here", "exercise", output="Ellipsis"),
        cell("code", CHECK, "self-check", output="✗ Not yet: set answer\n"),
        cell("markdown", solution("answer = 'SOLUTION_TEXT_42'", "\nSOLUTION_WHY: a string.\n"), "solution"),
        cell("code", "print('after')", output="after\n"),
    ]
    return nb


def test_the_form_and_its_solved_copy():
    """The solved copy runs each solution in place of its exercise; the original stays as it was."""
    nb = synthetic_notebook()
    before = nbformat.writes(nb)
    assert exercises.problems(nb) == []
    assert exercises.exercises(nb) == [exercises.Exercise(1, 2, 3)]
    done = exercises.solved(nb)
    assert done.cells[1].source == "answer = 'SOLUTION_TEXT_42'"
    assert [c.source for c in done.cells[2:]] == [c.source for c in nb.cells[2:]]
    assert all(c.outputs == [] and c.execution_count is None for c in done.cells if c.cell_type == "code")
    namespace = {}
    for c in done.cells:  # what a kernel would do with the code cells, in order
        if c.cell_type == "code" and "self-check" in exercises.tags(c):
            assert namespace["answer"] == "SOLUTION_TEXT_42"
        elif c.cell_type == "code":
            exec(c.source, namespace)
    assert nbformat.writes(nb) == before


@pytest.mark.parametrize(("change", "expected"), [
    (lambda nb: nb.cells.__setitem__(3, cell("code", "answer = 'SOLUTION_TEXT_42'", "solution")),
     ["cell 3: the 'solution' cell is not a markdown cell of the form "
      "<details><summary>Solution</summary>, a blank line, one ```python fence, </details>",
      "cell 3: a 'solution' code cell runs on Run All and overwrites the learner's answer; "
      "make it a markdown cell"]),
    (lambda nb: setattr(nb.cells[3], "source", solution("a = 1\n```\n\n```python\nb = 2")),
     ["cell 3: the 'solution' cell is not a markdown cell of the form "
      "<details><summary>Solution</summary>, a blank line, one ```python fence, </details>"]),
    (lambda nb: setattr(nb.cells[3], "source", nb.cells[3].source.replace("<details>", "<details open>")),
     ["cell 3: the 'solution' cell is not a markdown cell of the form "
      "<details><summary>Solution</summary>, a blank line, one ```python fence, </details>"]),
    (lambda nb: setattr(nb.cells[2].outputs[0], "text", "✓ right\n"),
     ["cell 2: the self-check's saved output does not say 'Not yet': did a solution run? "
      "The committed run is the untouched placeholder's"]),
    (lambda nb: setattr(nb.cells[2], "source", "print('✓ right')"),
     ["cell 2: the 'self-check' cell never prints both '✓' and 'Not yet'"]),
    (lambda nb: nb.cells.insert(2, nb.cells.pop(3)),
     ["cell 1: the 'exercise' cell is not followed by a 'self-check' code cell",
      "cell 2: a 'solution' cell that does not follow an exercise's self-check"]),
    (lambda nb: nb.cells.__setitem__(slice(1, 4), []), ["no cell tagged 'exercise'"]),
])
def test_problems_name_each_break_of_the_form(change, expected):
    """An old-form solution cell (code, which Run All executes) or a half-made one is named with its cell."""
    nb = synthetic_notebook()
    change(nb)
    assert exercises.problems(nb) == expected


def test_student_copies_of_a_synthetic_notebook_carry_no_solution(tmp_path):
    """Neither a solution cell nor anything it printed may reach the student copy."""
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(synthetic_notebook(), source / "01_demo.ipynb")
    original = (source / "01_demo.ipynb").read_bytes()
    written = exercises.write_student_copies(tmp_path / "out", source=source)
    assert written == [("01_demo.ipynb", 1)]
    text = (tmp_path / "out" / "01_demo.ipynb").read_text()
    assert "SOLUTION_" not in text
    copy = nbformat.read(tmp_path / "out" / "01_demo.ipynb", as_version=4)
    nbformat.validate(copy)
    assert [sorted(exercises.tags(c)) for c in copy.cells] == [[], ["exercise"], ["self-check"], []]
    assert not any("SOLUTION_WHY" in c.source or "details" in c.source for c in copy.cells)
    assert all(c.outputs == [] and c.execution_count is None
               for c in copy.cells if c.cell_type == "code")
    assert (source / "01_demo.ipynb").read_bytes() == original


def test_the_learner_form_drops_only_solutions_that_would_run():
    """What the hub lays out: a collapsed markdown solution stays, an old-form code solution goes."""
    nb = synthetic_notebook()
    assert exercises.learner_form(nb).cells == nb.cells
    nb.cells.insert(2, cell("code", "answer = 'SOLUTION_TEXT_42'", "solution"))
    learner = exercises.learner_form(nb)
    assert [c.source for c in learner.cells] == [c.source for c in synthetic_notebook().cells]


def test_student_copies_refuse_to_overwrite_the_notebooks_folder():
    """Writing copies over the instructor's notebooks would delete the solutions for good."""
    for dest in ("notebooks", "notebooks/students", str(REPO / "notebooks")):
        out = lab("student-copies", dest)
        assert out.returncode != 0, out.stdout
        assert "refusing" in out.stdout + out.stderr, out.stdout


def real_notebooks() -> list[Path]:
    return sorted((REPO / "notebooks").glob("[0-9]*.ipynb"))


def test_every_notebook_has_exercises_in_the_form():
    """Each notebook: at least one exercise, each followed by its self-check and a markdown solution."""
    notebooks = real_notebooks()
    assert notebooks, "notebooks/ holds no .ipynb yet"
    found = {nb.name: exercises.problems(nbformat.read(nb, as_version=4)) for nb in notebooks}
    assert found == {name: [] for name in found}


def test_every_committed_self_check_says_not_yet():
    """The committed outputs are Run All's on the untouched placeholders, which nbval compares.

    A ✓ there would mean a solution ran when the notebook was refreshed.
    """
    for path in real_notebooks():
        nb = nbformat.read(path, as_version=4)
        checks = [nb.cells[ex.check] for ex in exercises.exercises(nb)]
        assert checks, f"{path.name} has no exercise in the form"
        for check in checks:
            assert "Not yet" in exercises.printed(check), (path.name, check.source, check.outputs)
            assert "✓" not in exercises.printed(check), (path.name, check.source, check.outputs)
            assert verdicts.verdict_of(exercises.printed(check), failed=False) == verdicts.NOT_YET  # the room's read


def test_student_copies_of_the_real_notebooks_carry_no_solution(tmp_path):
    """The command an instructor runs before class, on the notebooks as they ship."""
    notebooks = real_notebooks()
    assert notebooks, "notebooks/ holds no .ipynb yet"
    out = lab("student-copies", str(tmp_path / "students"))
    assert out.returncode == 0, out.stdout + out.stderr
    for path in notebooks:
        original = nbformat.read(path, as_version=4)
        copy = nbformat.read(tmp_path / "students" / path.name, as_version=4)
        solutions = [c.source for c in original.cells if "solution" in exercises.tags(c)]
        assert solutions, f"{path.name} has no solution cell"
        assert not [c for c in copy.cells if "solution" in exercises.tags(c)]
        assert not set(solutions) & {c.source for c in copy.cells}
        assert all(not c.outputs for c in copy.cells if c.cell_type == "code")
        assert len(copy.cells) == len(original.cells) - len(solutions)


def test_the_hub_lays_out_no_solution_that_runs(tmp_path):
    """What a learner's ~/database-evolution/notebooks gets: the form's folded solution, never a code one."""
    import os
    import pwd

    from labkit.classroom import hub

    stage = tmp_path / "stage"
    (stage / "notebooks").mkdir(parents=True)
    old_form = synthetic_notebook()
    old_form.cells.insert(2, cell("code", "answer = 'SOLUTION_TEXT_42'", "solution"))
    nbformat.write(old_form, stage / "notebooks" / "01_demo.ipynb")
    me = pwd.getpwuid(os.getuid())
    entry = pwd.struct_passwd((me.pw_name, "x", me.pw_uid, me.pw_gid, "", str(tmp_path / "home"), me.pw_shell))
    laid = hub.lay_notebooks(stage, entry)
    learner = nbformat.read(laid / "notebooks" / "01_demo.ipynb", as_version=4)
    assert [c.source for c in learner.cells] == [c.source for c in synthetic_notebook().cells]
    assert [c.cell_type for c in learner.cells if "solution" in exercises.tags(c)] == ["markdown"]
