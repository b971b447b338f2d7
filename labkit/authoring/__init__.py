"""Tools for the lab's authors: the exercise convention and student copies, and refreshing notebooks' outputs."""
