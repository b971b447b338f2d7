"""What the notebooks call: a phase's workspace, what the learner sees, and each lesson's helpers."""
