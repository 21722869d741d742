"""The command line: parses arguments, runs the stages, and is the one place errors become exit codes.

Must not be imported by any other package of vmctl.
"""
