"""Code shared by the trainers and the probes: trunk architectures (``learning.models``), the checkpoint
format (``learning.checkpoint``) and user-facing errors (``learning.errors``).

Nothing is imported here, so that ``learning.errors`` stays cheap to import for command-line start-up.
"""

__version__ = "0.1.0"
