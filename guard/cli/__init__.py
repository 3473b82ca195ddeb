"""The command line: one module per command, the argument definitions, output formats.

May import everything below it (guard.mail, guard.clean, guard.engine) and starts the terminal
app through a lazy import (guard.cli.ui); nothing imports guard.cli.
"""
