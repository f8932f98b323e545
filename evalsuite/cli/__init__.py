"""The command line: one module per subcommand; :mod:`evalsuite.cli.main` builds the parser and
maps errors to exit codes.

Modules here import torch, diffusers and pandas only inside the command that needs them, so
``evalsuite --help``, ``evalsuite runners`` and ``evalsuite datasets`` stay light
(``tests/test_cli_light.py`` checks it).
"""

#: Exit codes of every subcommand (see :mod:`evalsuite.cli.main`).
EXIT_OK, EXIT_FAILED_ROWS, EXIT_USAGE, EXIT_LOCKED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
