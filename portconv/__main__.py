"""``python -m portconv`` and the ``portconv`` script: the command-line front door.

The work lives in :mod:`portconv.cli.main`, imported only when the command
runs, so ``import portconv`` never loads an array library.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``portconv`` command line; returns the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 ok; 1 a check deviated beyond its bound; 2 usage error or a backend
        asked for but unavailable.
    """
    from portconv.cli.main import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
