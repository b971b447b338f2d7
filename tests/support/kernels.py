"""A learner's kernel as the classroom hub starts it: the hub's kernel spec, the learner's own database URL."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from labkit.classroom import verdicts

from .helpers import REPO


@contextmanager
def learner_kernel(database_url: str, name: str, folder: Path):
    """Start a kernel from the kernel spec ``hub.stage_lab`` writes (in ``folder``); yield its client."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    specs = verdicts.write_kernelspec(folder / "jupyter").parent
    km = KernelManager(kernel_name="python3",
                       kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(specs)], ensure_native_kernel=False))
    env = {k: v for k, v in os.environ.items() if k != "LAB_CLASSROOM_DIR"}
    env.update(DATABASE_URL=database_url, LAB_STUDENT=name, PYTHONPATH=str(REPO))
    km.start_kernel(env=env, cwd=str(REPO / "notebooks"))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def run_cells(kc, *sources: str) -> str:
    """Run each source in the kernel, in order (each must succeed); return what they printed."""
    printed = []

    def keep(msg):
        if msg["msg_type"] == "stream":
            printed.append(msg["content"]["text"])
    for source in sources:
        reply = kc.execute_interactive(source, output_hook=keep, timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(printed)


def first_exercise(notebook: str = "01_create_users.ipynb") -> tuple[str, str, str]:
    """Return a notebook's first exercise: the placeholder as given, its self-check, and its solution."""
    import nbformat

    from labkit.authoring import exercises

    nb = nbformat.read(REPO / "notebooks" / notebook, as_version=4)
    first = exercises.exercises(nb)[0]
    return (nb.cells[first.exercise].source, nb.cells[first.check].source,
            exercises.solution_code(nb.cells[first.solution]))
