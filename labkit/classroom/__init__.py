"""The classroom: one shared PostgreSQL (``server``), a fenced database per learner (``learners``),
and JupyterHub's per-learner hook (``hub``).
"""
