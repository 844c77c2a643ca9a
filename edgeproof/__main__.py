"""`python -m edgeproof` is the `edgeproof` command."""

from edgeproof.cli.main import entry

if __name__ == "__main__":  # guarded: spawned benchmark workers re-import this module
    entry()
