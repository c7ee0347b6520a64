"""mono-probe: linear probes on every conv block of a frozen trunk, after the paper's protocol (section 4.1).

Entry points: ``mono.probes.linear.run_linear`` (Python) and ``mono-probe`` (``mono.probes.cli``). See docs/probes.md.
"""

__version__ = "0.1.0"
