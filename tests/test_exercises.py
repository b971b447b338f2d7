"""Exercises: every notebook follows the convention, and student copies carry no solution."""

from pathlib import Path

import nbformat

from labkit.authoring import exercises

from support.helpers import REPO, lab


def cell(kind, source, tag=None, output=None):
    new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    c = new(source)
    if tag:
        c.metadata["tags"] = [tag]
    if tag == "solution":
        c.metadata["jupyter"] = {"source_hidden": True}
    if output is not None:
        c.outputs = [nbformat.v4.new_output("stream", name="stdout", text=output)]
        c.execution_count = 3
    return c


def synthetic_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        cell("markdown", "# Title\n\n## Exercise: drop a column"),
        cell("code", "answer = ...  # your code here", "exercise", output="Ellipsis"),
        cell("code", "# Solution\nanswer = 'SOLUTION_TEXT_42'\nprint(answer)", "solution",
             output="SOLUTION_OUTPUT_42"),
        cell("code", "print('✓ right' if answer == ... else '✗ Not yet')", "self-check",
             output="✓ right, it is SOLUTION_OUTPUT_42"),
    ]
    return nb


def test_student_copies_of_a_synthetic_notebook_carry_no_solution(tmp_path):
    """Neither a solution cell nor anything it printed may reach the student copy."""
    source = tmp_path / "notebooks"
    source.mkdir()
    nbformat.write(synthetic_notebook(), source / "01_demo.ipynb")
    original = (source / "01_demo.ipynb").read_bytes()
    assert exercises.problems(nbformat.read(source / "01_demo.ipynb", as_version=4)) == []
    written = exercises.write_student_copies(tmp_path / "out", source=source)
    assert written == [("01_demo.ipynb", 1)]
    text = (tmp_path / "out" / "01_demo.ipynb").read_text()
    assert "SOLUTION_" not in text
    copy = nbformat.read(tmp_path / "out" / "01_demo.ipynb", as_version=4)
    nbformat.validate(copy)
    assert [sorted(exercises.tags(c)) for c in copy.cells] == [[], ["exercise"], ["self-check"]]
    assert all(c.outputs == [] and c.execution_count is None
               for c in copy.cells if c.cell_type == "code")
    assert (source / "01_demo.ipynb").read_bytes() == original


def test_student_copies_refuse_to_overwrite_the_notebooks_folder(tmp_path):
    """Writing copies over the instructor's notebooks would delete the solutions for good."""
    for dest in ("notebooks", "notebooks/students", str(REPO / "notebooks")):
        out = lab("student-copies", dest)
        assert out.returncode != 0, out.stdout
        assert "refusing" in out.stdout + out.stderr, out.stdout
    assert exercises.problems(synthetic_notebook()) == []
    broken = synthetic_notebook()
    del broken.cells[2]
    assert exercises.problems(broken) == [
        "cell 1: the 'exercise' cell is not followed by a 'solution' cell"]


def real_notebooks() -> list[Path]:
    return sorted((REPO / "notebooks").glob("*.ipynb"))


def test_every_notebook_has_exercises_in_the_convention():
    """Each notebook: at least one exercise, each followed by its solution and self-check."""
    notebooks = real_notebooks()
    assert notebooks, "notebooks/ holds no .ipynb yet"
    found = {nb.name: exercises.problems(nbformat.read(nb, as_version=4)) for nb in notebooks}
    assert found == {name: [] for name in found}


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
