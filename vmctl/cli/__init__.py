"""The command line: the typer app (`app.py`), one module per group of commands, and the one place
where errors become messages and exit statuses.

Must not be imported by any other package of vmctl. Each command imports the stages it runs when
it runs, so that the fast commands (version, validate, schema) never load libvirt or pycdlib.
"""
