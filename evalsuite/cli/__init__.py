"""The command line: one module per subcommand (``main`` builds the parser and maps errors to exit codes).

Modules here import torch, diffusers and pandas only inside the command that needs them, so
``evalsuite --help``, ``evalsuite runners`` and ``evalsuite datasets`` stay light.
"""
