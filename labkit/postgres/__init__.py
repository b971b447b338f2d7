"""PostgreSQL for the lab: its binaries (``binaries``), any cluster's lifecycle (``cluster``),
and the embedded server (``embedded``).
"""
