"""Generation of replies: the sans-I/O reply machine and the task that drives it."""
