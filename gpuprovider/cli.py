"""The ``gpuprovider`` command: run an OpenQASM file, or report the devices and versions.

    gpuprovider run examples/ghz.qasm --shots 2000 --seed 7
    gpuprovider info --json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter, sleep
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__
from .kernels import select
from .kernels.precision import PRECISIONS
from .options import DEFAULTS

if TYPE_CHECKING:
    from qiskit import QuantumCircuit

PROG = "gpuprovider"
TOP_COUNTS = 20
"""Outcomes listed by ``run`` without --json; the rest are summarised in one line."""
POLL_SECONDS = (0.002, 0.1)
"""First and longest pause between progress polls of a running job."""
_HEADER = re.compile(r"^\s*OPENQASM\s+(\d+)", re.MULTILINE)


class _Parser(argparse.ArgumentParser):
    """Reports usage errors as ``gpuprovider: error: ...`` in subcommands too."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}\n")


class CLIError(Exception):
    """A failure reported as one ``gpuprovider: error:`` line; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _message(exc: BaseException) -> str:
    """The message of ``exc`` (QiskitError's ``str`` adds quotes around it)."""
    return getattr(exc, "message", None) or str(exc)


def _parse_failure(exc: BaseException) -> str:
    """The parser's message, else the position of the token ANTLR stopped at."""
    cause = exc.__cause__
    token = getattr(cause.args[0] if cause and cause.args else None, "offendingToken", None)
    if _message(exc) or token is None:
        return _message(exc) or f"syntax error ({type(exc).__name__})"
    return f"syntax error at line {token.line}, column {token.column + 1} near {token.text!r}"


def load_circuit(path: str) -> QuantumCircuit:
    """The circuit in the OpenQASM 2 or 3 file ``path`` (version taken from its header).

    Raises:
        CLIError: the file cannot be read or parsed.
    """
    import qiskit.qasm2
    import qiskit.qasm3

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CLIError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    header = _HEADER.search(text)
    qasm_version = header.group(1) if header else "3"
    if qasm_version not in ("2", "3"):
        raise CLIError(f"{path}: OPENQASM {qasm_version} is not supported (only 2 and 3)")
    try:
        if qasm_version == "2":
            legacy = qiskit.qasm2.LEGACY_CUSTOM_INSTRUCTIONS
            return qiskit.qasm2.load(path, custom_instructions=legacy)
        return qiskit.qasm3.load(path)
    except Exception as exc:  # QiskitError, or the OpenQASM 3 parser's own syntax error
        failure = _parse_failure(exc)
        raise CLIError(f"cannot load {path} as OpenQASM {qasm_version}: {failure}") from exc


def _wait(job: Any, show_progress: bool) -> None:
    """Wait for ``job`` to finish, with a tqdm bar on stderr when the run takes a while."""
    from qiskit.providers.jobstatus import JOB_FINAL_STATES
    from tqdm import tqdm

    pause, longest = POLL_SECONDS
    total = job.progress()[1]
    with tqdm(total=total, desc="simulating", unit="op", file=sys.stderr, delay=0.5,
              leave=False, disable=not show_progress) as bar:
        while job.status() not in JOB_FINAL_STATES:
            bar.update(job.progress()[0] - bar.n)
            sleep(pause)
            pause = min(2 * pause, longest)


def execute(args: argparse.Namespace) -> dict[str, Any]:
    """Load, transpile and run ``args.file``; the summary ``run --json`` prints.

    Raises:
        CLIError: loading, transpiling or running failed, or Ctrl-C cancelled the job.
    """
    from qiskit import transpile
    from qiskit.exceptions import QiskitError

    from .backend import GPUSimulator

    circuit = load_circuit(args.file)
    try:
        backend = GPUSimulator(device=args.device, precision=args.precision)
        compiled = transpile(circuit, backend)
        start = perf_counter()
        job = backend.run(compiled, shots=args.shots, seed_simulator=args.seed)
        try:
            _wait(job, show_progress=not args.json and sys.stderr.isatty())
        except KeyboardInterrupt:
            stopped = job.cancel()
            raise CLIError("interrupted; " + ("the job was cancelled" if stopped
                           else "the job had already finished"), 130) from None
        result = job.result()
        wall_time = perf_counter() - start
    except QiskitError as exc:
        raise CLIError(_message(exc)) from exc
    return {
        "counts": result.get_counts() if circuit.num_clbits else {},
        "shots": args.shots,
        "seed": result.metadata["seed_simulator"],
        "device": result.metadata["device"],
        "precision": result.metadata["precision"],
        "num_qubits": circuit.num_qubits,
        "simulation_time": result.metadata["simulation_time"],
        "wall_time": wall_time,
    }


def format_run(summary: dict[str, Any], top: int = TOP_COUNTS) -> str:
    """The human-readable report of a run: counts, most frequent first, then the timing."""
    counts = sorted(summary["counts"].items(), key=lambda item: (-item[1], item[0]))
    lines = [f"counts ({summary['shots']} shots, {summary['num_qubits']} qubits):"]
    if not counts:
        lines.append("  (none: the circuit has no classical bits)")
    key_width = max((len(key) for key, _ in counts), default=0)
    count_width = len(str(summary["shots"]))
    for key, count in counts[:top]:
        share = 100 * count / summary["shots"]
        lines.append(f"  {key:>{key_width}}  {count:>{count_width}}  {share:6.2f}%")
    if len(counts) > top:
        lines.append(f"  ... and {len(counts) - top} more outcomes (--json lists all)")
    lines.append(f"time: {summary['wall_time']:.3f} s wall, {summary['simulation_time']:.3f} s "
                 f"simulation; device {summary['device']}, precision {summary['precision']}, "
                 f"seed {summary['seed']}")
    return "\n".join(lines)


def _numba_threading() -> dict[str, Any]:
    """Numba's threading layer (the one in use once a parallel kernel ran) and thread count."""
    import numba

    select.kernels_for("CPU")  # sets the layer the engine asks for
    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process yet
        layer = f"{numba.config.THREADING_LAYER} (requested)"
    return {"threading_layer": layer, "num_threads": numba.get_num_threads()}


def collect_info() -> dict[str, Any]:
    """Versions, each device's probe, the device "auto" picks, and Numba's threading."""
    import numba
    import numpy
    import qiskit

    devices = {}
    for report in (select.cpu_report(), select.gpu_report()):
        entry: dict[str, Any] = {"usable": report.usable, "reason": report.reason,
                                 "name": report.name, "total_memory": report.total_memory}
        if report.usable:
            entry["max_qubits"] = {p: select.max_qubits(report.device, p) for p in PRECISIONS}
        devices[report.device] = entry
    return {
        "versions": {"gpuprovider": __version__,
                     **{module.__name__: module.__version__ for module in (qiskit, numpy, numba)}},
        "devices": devices,
        "auto_device": select.resolve("auto").device,
        "numba": _numba_threading(),
    }


def format_info(info: dict[str, Any]) -> str:
    """The human-readable report of :func:`collect_info`."""
    lines = ["versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items())]
    for device, entry in info["devices"].items():
        state = "usable" if entry["usable"] else "not usable"
        lines.append(f"{device}: {state}: {entry['reason']}")
        if "max_qubits" in entry:
            most = ", ".join(f"{p} {n}" for p, n in entry["max_qubits"].items())
            lines.append(f"  most qubits ({entry['total_memory'] / 2**30:.1f} GiB): {most}")
    lines.append(f"device='auto' picks: {info['auto_device']}")
    lines.append("numba threading layer: {threading_layer}, {num_threads} threads"
                 .format(**info["numba"]))
    return "\n".join(lines)


def _int_at_least(minimum: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``; others are rejected as not ``what``."""
    def parse(text: str) -> int:
        if not re.fullmatch(r"\s*[+-]?\d+\s*", text) or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return int(text)
    return parse


def _device(text: str) -> str:
    try:
        return select.normalize_device(text)
    except ValueError:
        return text  # argparse then reports the choices


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gpuprovider`` command."""
    parser = _Parser(prog=PROG, description="GPU-accelerated statevector simulator for Qiskit.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="simulate an OpenQASM 2 or 3 file and print the counts",
        description="Transpile the circuit in FILE for the simulator, run it and print the "
        f"counts, most frequent first (the top {TOP_COUNTS}), with the time taken, device "
        "and precision. Ctrl-C cancels the run.")
    run.add_argument("file", metavar="FILE", help="OpenQASM 2 or 3 file (told apart by its "
                     "OPENQASM header; a file without one is read as OpenQASM 3)")
    run.add_argument("--shots", type=_int_at_least(1, "a positive integer"),
                     default=DEFAULTS["shots"], help="number of shots (default: %(default)s)")
    run.add_argument("--seed", type=_int_at_least(0, "an integer >= 0"),
                     default=DEFAULTS["seed_simulator"], help="sampling seed, for reproducible "
                     "counts (default: a fresh one, printed with the result)")
    run.add_argument("--device", type=_device, choices=select.DEVICES, default=DEFAULTS["device"],
                     help="where to simulate; auto takes the GPU when one is usable "
                     "(default: %(default)s)")
    run.add_argument("--precision", choices=list(PRECISIONS), default=DEFAULTS["precision"],
                     help="statevector precision (default: %(default)s)")
    run.add_argument("--json", action="store_true",
                     help="print one JSON object (counts, shots, seed, device, precision, "
                     "num_qubits, simulation_time, wall_time) instead; wall_time is from "
                     "submitting the job to its result")

    info = commands.add_parser(
        "info", help="show versions, devices and how many qubits fit",
        description="Show the versions, whether each device is usable and why, which device "
        "device='auto' picks, the most qubits per precision, and Numba's threading.")
    info.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already reported
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        if args.command == "run":
            summary = execute(args)
            print(json.dumps(summary) if args.json else format_run(summary))
        else:
            info = collect_info()
            print(json.dumps(info, indent=2) if args.json else format_info(info))
    except CLIError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader (e.g. head) closed stdout early
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
