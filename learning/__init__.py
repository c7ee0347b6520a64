"""The learning side's shared code, used by the trainers, the probes and mono-repro (never by the generator):

* ``models`` -- the trunk architectures and the GAN generator;
* ``checkpoint`` -- the checkpoint format, the contract between the trainers and the probes (docs/checkpoints.md);
* ``data`` -- the dataset reader, which knows only the on-disk format (shards/README.md);
* ``seeds``, ``device``, ``schedules``, ``atomic`` -- derived seeds, the --device option, learning-rate
  schedules, atomic file writes: one helper for each;
* ``errors`` and ``cli_errors`` -- UserError, and how the command lines report it in one line.

Nothing is imported here, so that importing one of them costs only that one.
"""

__version__ = "0.1.0"
