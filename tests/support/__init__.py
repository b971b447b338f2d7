"""What the test files share: the lab's command lines in a subprocess, the server's admin side
(``support.helpers``), and the one rule for a missing prerequisite (``support.prerequisites``)."""
