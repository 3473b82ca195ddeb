"""The command line: one module per command, the argument definitions, output formats.

main.py builds the parser and dispatches; each command's module (scan, report, explain, rules,
clean, watch, restore, ui, strip) is imported only when that command runs. args.py holds the
options (light, so `guard --help` imports no command), output.py the output formats, common.py
and imap.py what several commands share.

May import everything below it (guard.mail, guard.clean, guard.engine) and starts the terminal
app through a lazy import (guard.cli.ui); nothing imports guard.cli.
"""
