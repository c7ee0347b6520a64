"""End-to-end reproductions of the paper's experiments, driving the command-line tools."""
