"""The ``gpuprovider`` command: run an OpenQASM file, report the devices and versions, or
time the simulator beside its peers.

    gpuprovider run examples/ghz.qasm --shots 2000 --seed 7
    gpuprovider info --json
    gpuprovider bench --families qft,qv --qubits 16-24:2 --plot bench.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from time import perf_counter, sleep
from typing import TYPE_CHECKING, Any, NoReturn

from . import __version__, benchsuite
from . import device as devices
from .exceptions import DeviceUnavailableError
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


def _has_statements(text: str) -> bool:
    """False for text that is empty once comments and whitespace are removed."""
    stripped = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.DOTALL)
    return bool(stripped.strip())


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
    if not _has_statements(text):
        raise CLIError(f"{path} holds no OpenQASM program (it is empty or only comments)")
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
    """Load and run ``args.file``; the summary ``run --json`` prints. The circuit runs as
    loaded: ``run()`` simulates every gate with a definition, so no transpiling is needed.

    Raises:
        CLIError: loading or running failed, or Ctrl-C cancelled the job.
    """
    from qiskit.exceptions import QiskitError

    from .backend import GPUSimulator

    circuit = load_circuit(args.file)
    try:
        backend = GPUSimulator(device=args.device, precision=args.precision)
        start = perf_counter()
        job = backend.run(circuit, shots=args.shots, seed_simulator=args.seed)
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

    _ = devices.CPU.kernels  # loading them sets the layer the engine asks for
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

    found = {}
    for device in (devices.CPU, devices.GPU):
        report = device.report
        entry: dict[str, Any] = {"usable": report.usable, "reason": report.reason,
                                 "name": report.name, "total_memory": report.total_memory}
        if report.usable:
            entry["max_qubits"] = {p: device.max_qubits(p) for p in PRECISIONS}
        found[device.name] = entry
    return {
        "versions": {"gpuprovider": __version__,
                     **{module.__name__: module.__version__ for module in (qiskit, numpy, numba)}},
        "devices": found,
        "auto_device": devices.resolve("auto").name,
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
        return devices.normalize_choice(text)
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
    run.add_argument("--device", type=_device, choices=devices.DEVICE_CHOICES,
                     default=DEFAULTS["device"],
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
    _add_bench(commands)
    return parser


def _names(allowed: Sequence[str], what: str) -> Callable[[str], tuple[str, ...]]:
    """An argparse type: a comma-separated list of names from ``allowed``."""
    def parse(text: str) -> tuple[str, ...]:
        names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        unknown = [name for name in names if name not in allowed] or ([text] if not names else [])
        if unknown:
            raise argparse.ArgumentTypeError(
                f"{unknown[0]!r} is not a {what}; choose from {', '.join(allowed)}")
        return names
    return parse


def _qubit_sizes(text: str) -> tuple[int, ...]:
    try:
        return benchsuite.parse_sizes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _add_bench(commands: Any) -> None:
    defaults = benchsuite.BenchConfig()
    bench = commands.add_parser(
        "bench", help="time gpuprovider beside qiskit-aer, qsim, Statevector, lightning.qubit, "
        "qulacs and qibojit",
        description="Time each circuit family at each size on every simulator (warm-up, then "
        "the median of --repeats runs of --shots shots) and print a table with each peer's "
        "time over ours in the same precision. Peers that are not installed, runs estimated "
        "to exceed --budget-s and Statevector above "
        f"{benchsuite.STATEVECTOR_MAX_QUBITS} qubits are skipped with the reason.")
    bench.add_argument("--families", type=_names(list(benchsuite.FAMILIES), "circuit family"),
                       default=defaults.families, metavar="LIST",
                       help=f"comma-separated, from {', '.join(benchsuite.FAMILIES)} "
                       "(default: all)")
    bench.add_argument("--qubits", type=_qubit_sizes, default=defaults.qubits, metavar="SIZES",
                       help="e.g. 16-26 (each size), 16-26:2 (every second) or 16,20,24 "
                       "(default: 16-26:2)")
    bench.add_argument("--simulators", type=_names(list(benchsuite.SIMULATORS), "simulator"),
                       default=defaults.simulators, metavar="LIST",
                       help=f"comma-separated, from {', '.join(benchsuite.SIMULATORS)} "
                       "(default: all)")
    bench.add_argument("--precisions", type=_names(list(PRECISIONS), "precision"),
                       default=defaults.precisions, metavar="LIST",
                       help="double and/or single; qsim runs single only, Statevector and "
                       "qulacs double only (default: double,single)")
    bench.add_argument("--device", type=_device, choices=devices.DEVICE_CHOICES,
                       default=defaults.device,
                       help="gpuprovider's device (default: %(default)s)")
    bench.add_argument("--repeats", type=_int_at_least(1, "a positive integer"),
                       default=defaults.repeats, help="timed runs per median (default: "
                       "%(default)s)")
    bench.add_argument("--shots", type=_int_at_least(1, "a positive integer"),
                       default=defaults.shots, help="shots per run (default: %(default)s)")
    bench.add_argument("--budget-s", type=_positive_float, default=defaults.budget_s,
                       help="skip a run estimated (from the size before) to take longer "
                       "(default: %(default)s)")
    bench.add_argument("--plot", metavar="PNG", help="write a plot of time against qubits here")
    bench.add_argument("--json", metavar="PATH", help="write every row and run here as JSON")


def bench(args: argparse.Namespace) -> str:
    """Run the suite ``args`` describe, write --plot and --json; the table to print.

    Raises:
        CLIError: gpuprovider's device is not usable, or a file cannot be written.
    """
    if "gpuprovider" in args.simulators:
        try:
            devices.resolve(args.device)
        except DeviceUnavailableError as exc:
            raise CLIError(str(exc)) from None
    config = benchsuite.BenchConfig(
        families=args.families, qubits=args.qubits, simulators=args.simulators,
        precisions=args.precisions, device=args.device, repeats=args.repeats,
        shots=args.shots, budget_s=args.budget_s)
    rows = benchsuite.run_suite(config, progress=_report_progress)
    written = []
    try:
        if args.plot:
            benchsuite.write_plot(rows, args.plot)
            written.append(f"plot written to {args.plot}")
        if args.json:
            benchsuite.write_json(rows, config, args.json)
            written.append(f"figures written to {args.json}")
    except OSError as exc:
        raise CLIError(f"cannot write {exc.filename}: {exc.strerror or exc}") from exc
    return "\n".join([benchsuite.format_table(rows, config), *written])


def _report_progress(row: benchsuite.Row) -> None:
    outcome = f"{row.seconds:.4f} s" if row.seconds is not None else f"skipped: {row.skipped}"
    print(f"{row.family} n={row.num_qubits} {row.simulator} {row.precision}: {outcome}",
          file=sys.stderr, flush=True)


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
        elif args.command == "bench":
            print(bench(args))
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
