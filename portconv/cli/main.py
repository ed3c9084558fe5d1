"""``portconv``: the command line.

``portconv`` alone runs the seed walkthrough on every array library found
here and prints how each agrees with NumPy, then a short timing table.
Subcommands: ``info``, ``check`` (the equivalence report), ``bench`` (the
benchmark suite of :mod:`portconv.cli.bench`), ``walkthrough`` (the default,
with options).

Exit codes: 0 ok; 1 a check deviated beyond its bound; 2 a usage error, or a
backend asked for that is unknown, not installed or without a device.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import os
import platform
import sys
import warnings
from collections.abc import Sequence

import portconv

from . import backends as _backends
from .equivalence import split_names

__all__ = ["EXIT_DEVIATION", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

EXIT_OK = 0
EXIT_DEVIATION = 1
EXIT_USAGE = 2

_EPILOG = (
    "exit codes: 0 ok; 1 a check deviated beyond its error bound; 2 usage error, or a "
    "backend asked for that is unknown, not installed or has no device"
)


def _print_error(command: str, message: str) -> None:
    print(f"portconv {command}: error: {message}", file=sys.stderr)


# --- walkthrough (the default) ---------------------------------------------------


def _add_walkthrough_options(parser: argparse.ArgumentParser, prefix: str = "") -> None:
    # the top-level parser uses other dests: a subparser's defaults would overwrite them
    parser.add_argument(
        "--backend",
        dest=prefix + "backends",
        action="append",
        default=[],
        metavar="NAME",
        help="a backend to run, repeatable or comma separated (numpy, array_api_strict, jax, "
        "jax-gpu, torch, torch-cuda, cupy, dask; default: every one installed here)",
    )
    parser.add_argument(
        "--no-bench",
        dest=prefix + "no_bench",
        action="store_true",
        help="skip the timing table after the checks",
    )


def _found_line(names: list[str] | None) -> str:
    if names:
        return ""
    _, missing = _backends.discover()
    if not missing:
        return ""
    return "not found here: " + "; ".join(f"{k} ({v})" for k, v in missing.items())


def run_walkthrough(names: list[str], bench: bool = True) -> int:
    """The default command: checks on every backend, then the timing table."""
    from . import walkthrough

    selected = _backends.resolve(names)
    labels = ", ".join(b.name + (" (jitted)" if b.jit else "") for b in selected)
    print(f"portconv {portconv.__version__}: the seed walkthrough on {labels}")
    found = _found_line(names)
    if found:
        print(found)
    n_checks = len(selected) * len(walkthrough.CHECKS)
    total = n_checks + (len(selected) * len(walkthrough.BENCH_CASES) if bench else 0)
    progress = _backends.Progress()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = walkthrough.run_checks(selected, progress, total=total)
        timings = (
            walkthrough.run_bench(selected, progress, step=n_checks, total=total) if bench else []
        )
    progress.close()
    print()
    print(walkthrough.format_notes(results))
    print()
    print("Agrees with a brute-force NumPy loop? (✓ within the error bound, largest |deviation|)")
    print(walkthrough.format_checks(results))
    if bench:
        print()
        print(
            "Timings: median of 5 interleaved calls after a warm-up, float32 (ratio = "
            "portconv / native; below 1 portconv is faster; a shared machine makes them noisy)"
        )
        print(walkthrough.format_bench(timings))
    if caught:
        print()
        print("Warnings raised by the libraries while running (each shown once):")
        print(_summarize_warnings(caught))
    ok = all(r.ok for row in results.values() for r in row)
    return EXIT_OK if ok else EXIT_DEVIATION


def _summarize_warnings(caught: Sequence[warnings.WarningMessage]) -> str:
    counts = collections.Counter(
        (w.category.__name__, str(w.message).splitlines()[0], f"{w.filename}:{w.lineno}")
        for w in caught
    )
    return "\n".join(
        f"  {category} x{n} at {where}: {message}"
        for (category, message, where), n in counts.items()
    )


# --- info ------------------------------------------------------------------------


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return str(getattr(mod, "__version__", "?"))


def _jax_devices() -> list[str]:
    jax = sys.modules.get("jax")
    if jax is None:
        return []
    seen = []
    for kind in ("cpu", "gpu", "tpu"):
        try:
            seen += [f"jax {d.platform}:{d.id} ({d.device_kind})" for d in jax.devices(kind)]
        except RuntimeError:
            pass
    return seen


def _torch_devices() -> list[str]:
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    seen = ["torch cpu"]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            seen.append(f"torch cuda:{i} ({torch.cuda.get_device_name(i)})")
    return seen


def _fft_column(backend: _backends.Backend) -> str:
    try:
        return "yes" if hasattr(backend.namespace(), "fft") else "no"
    except Exception as exc:  # a namespace that cannot be built is worth a note, not a crash
        return f"? ({type(exc).__name__})"


def run_info() -> int:
    """``portconv info``: versions, backends, devices and FFT extensions."""
    found, missing = _backends.discover()
    compat = _version("array_api_compat") or "not installed"
    print(f"portconv {portconv.__version__}, array-api-compat {compat}")
    print(
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print()
    rows = [[b.name, b.library, b.version, b.device, _fft_column(b)] for b in found]
    print(_table(["backend", "library", "version", "device", "fft extension"], rows))
    if missing:
        print()
        print("not available:")
        for name, why in missing.items():
            print(f"  {name}: {why}")
    devices = _jax_devices() + _torch_devices()
    if any(b.library == "cupy" for b in found):
        devices += [b.device for b in found if b.library == "cupy"]
    print()
    print("devices seen: " + (", ".join(devices) if devices else "cpu only"))
    return EXIT_OK


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


# --- bench -------------------------------------------------------------------------


def run_bench_command(argv: Sequence[str]) -> int:
    """``portconv bench ...``: hand the arguments to :func:`portconv.cli.bench.main`."""
    try:
        bench = importlib.import_module("portconv.cli.bench")
    except ImportError as exc:
        _print_error("bench", f"the benchmark suite is not available here ({exc})")
        return EXIT_USAGE
    try:
        return int(bench.main(list(argv)) or 0)
    except SystemExit as exc:  # its argparse: --help (0) or a usage error (2)
        return EXIT_OK if exc.code in (0, None) else EXIT_USAGE
    except _backends.BackendError as exc:
        _print_error("bench", str(exc))
        return EXIT_USAGE


# --- the parser ----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``portconv`` parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="portconv",
        description=(
            "One cross-correlation / convolution for every Array API library. Without a "
            "command: run the seed walkthrough on every array library installed here, "
            "compare each with NumPy, and time portconv against the native library."
        ),
        epilog=_EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"portconv {portconv.__version__}")
    _add_walkthrough_options(parser, prefix="top_")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    walk = sub.add_parser(
        "walkthrough",
        help="the seed walkthrough checks and a short timing table (the default)",
        description="The seed walkthrough on each backend, compared with brute-force NumPy loops.",
        epilog=_EPILOG,
    )
    _add_walkthrough_options(walk)
    sub.add_parser(
        "info",
        help="versions, installed backends, devices and FFT extensions",
        description="Versions of portconv, array-api-compat and every backend; devices; FFT.",
        epilog=_EPILOG,
    )
    check = sub.add_parser(
        "check",
        help="the equivalence report: every public function on every backend vs NumPy",
        description="Every public function, seeded cases, every backend compared with NumPy "
        "(NumPy itself with SciPy/torch) in units of the error bound.",
        epilog=_EPILOG,
    )
    from .equivalence import build_parser as equivalence_parser

    equivalence_parser(check)
    check.epilog = _EPILOG
    sub.add_parser(
        "bench",
        add_help=False,
        help="the benchmark suite: portconv bench [--backend NAME ...] [--quick] "
        "[--json PATH] [--plot PATH] (see portconv bench --help)",
    )
    return parser


def _dispatch(args: argparse.Namespace) -> int:
    names = split_names(list(getattr(args, "backends", None) or []) + args.top_backends)
    if args.command == "info":
        return run_info()
    if args.command == "check":
        from .equivalence import run_cli

        args.backends = names
        return run_cli(args)
    no_bench = args.top_no_bench or getattr(args, "no_bench", False)
    return run_walkthrough(names, bench=not no_bench)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``portconv`` command line.

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
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":  # bench parses its own arguments (and --help)
        return run_bench_command(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help / --version (0) or a usage error (2)
        return EXIT_USAGE if exc.code not in (0, None) else EXIT_OK
    try:
        return _dispatch(args)
    except _backends.BackendError as exc:
        _print_error(args.command or "walkthrough", str(exc))
        return EXIT_USAGE
