"""The ``gpuprovider`` command line, called in-process through ``main`` (plus one subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gpuprovider import device as devices
from testkit import ALPHA, chi_square_pvalue

from gpuprovider import __version__, cli
from gpuprovider.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
GHZ = str(EXAMPLES / "ghz.qasm")


def run_json(capsys, *args: str) -> dict:
    assert main(["run", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "circuit.qasm"
    path.write_text(text)
    return str(path)


def test_ghz_counts_are_all_zeros_or_all_ones(capsys):
    assert main(["run", GHZ, "--shots", "100", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    rows = [line.split() for line in captured.out.splitlines() if line.startswith("  ")]
    assert {key for key, _count, _share in rows} <= {"00000", "11111"}
    assert sum(int(count) for _key, count, _share in rows) == 100
    assert "device CPU" in captured.out or "device GPU" in captured.out
    assert "precision double" in captured.out and "s wall" in captured.out
    assert captured.err == ""


def test_json_has_the_fields(capsys):
    summary = run_json(capsys, GHZ, "--shots", "50", "--seed", "3", "--precision", "single")
    assert set(summary) == {"counts", "shots", "seed", "device", "precision", "num_qubits",
                            "simulation_time", "wall_time"}
    assert set(summary["counts"]) <= {"00000", "11111"}
    assert sum(summary["counts"].values()) == summary["shots"] == 50
    assert (summary["seed"], summary["precision"], summary["num_qubits"]) == (3, "single", 5)
    assert summary["device"] == devices.resolve("auto").name
    assert summary["wall_time"] >= summary["simulation_time"] >= 0


def test_qasm3_qft_gives_every_outcome(capsys):
    summary = run_json(capsys, str(EXAMPLES / "qft.qasm"), "--shots", "4000", "--seed", "2")
    assert len(summary["counts"]) == 16
    assert min(summary["counts"].values()) > 150


def test_qasm3_feed_forward_teleports(capsys):
    summary = run_json(capsys, str(EXAMPLES / "teleport.qasm"), "--shots", "4000", "--seed", "3")
    assert sum(summary["counts"].values()) == 4000
    assert {key.split()[0] for key in summary["counts"]} == {"0"}  # the undone rotation
    assert {key.split()[1] for key in summary["counts"]} == {"00", "01", "10", "11"}
    assert chi_square_pvalue(summary["counts"], {f"0 {m:02b}": 0.25 for m in range(4)}) > ALPHA


def test_biased_bell_pair(capsys):
    summary = run_json(capsys, str(EXAMPLES / "bell_pair.qasm"), "--shots", "2000", "--seed", "4")
    assert set(summary["counts"]) == {"00", "11"}
    assert 1350 < summary["counts"]["00"] < 1650


def test_many_outcomes_show_the_top_ones(capsys):
    assert main(["run", str(EXAMPLES / "random6.qasm"), "--seed", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len([line for line in lines if line.endswith("%")]) == cli.TOP_COUNTS
    assert "more outcomes" in lines[-2]


def test_circuit_without_classical_bits(capsys, tmp_path):
    path = write(tmp_path, 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\nh q[0];\n')
    assert main(["run", path]) == 0
    assert "no classical bits" in capsys.readouterr().out
    assert run_json(capsys, path)["counts"] == {}


def test_seed_reproduces_the_counts(capsys):
    first = run_json(capsys, str(EXAMPLES / "qft.qasm"), "--seed", "11")
    second = run_json(capsys, str(EXAMPLES / "qft.qasm"), "--seed", "11")
    assert first["counts"] == second["counts"]


def test_device_cpu_is_case_insensitive(capsys):
    assert run_json(capsys, GHZ, "--shots", "10", "--device", "cpu")["device"] == "CPU"


def _assert_failed(capsys, argv: list[str], code: int, *fragments: str) -> None:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("gpuprovider: error: ")
    for fragment in fragments:
        assert fragment in err


def test_missing_file(capsys, tmp_path):
    _assert_failed(capsys, ["run", str(tmp_path / "nope.qasm")], 1, "nope.qasm",
                   "No such file")


@pytest.mark.parametrize("text, fragment", [
    ('OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\nh q[0]\n', "OpenQASM 2"),
    ("OPENQASM 3.0;\nqubit[2 q;\n", "line 2"),
    ("OPENQASM 3.0;\nqubit[1] q;\nfoo q[0];\n", "'foo'"),
])
def test_parse_errors(capsys, tmp_path, text, fragment):
    _assert_failed(capsys, ["run", write(tmp_path, text)], 1, "cannot load", fragment)


def test_too_many_qubits(capsys, tmp_path):
    qubits = devices.resolve("auto").max_qubits("double") + 1
    path = write(tmp_path, f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{qubits}];\n'
                           "creg c[1];\nh q;\nmeasure q[0] -> c[0];\n")
    _assert_failed(capsys, ["run", path], 1, f"{qubits} qubits", "bytes")


def test_a_wide_file_with_few_qubits_in_use_runs(capsys, tmp_path):
    path = write(tmp_path, 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[127] q;\n'
                           "bit[2] c;\nh q[5];\ncx q[5], q[120];\nc[0] = measure q[5];\n"
                           "c[1] = measure q[120];\n")
    summary = run_json(capsys, path, "--shots", "1000", "--seed", "1")
    assert set(summary["counts"]) == {"00", "11"} and summary["num_qubits"] == 127


@pytest.mark.parametrize("text", ["", "\n  \n", "// just a comment\n/* and a block */\n"])
def test_a_file_without_a_program_is_named(capsys, tmp_path, text):
    _assert_failed(capsys, ["run", write(tmp_path, text)], 1, "holds no OpenQASM program")


@pytest.mark.parametrize("argv", [
    ["run", GHZ, "--shots", "0"],
    ["run", GHZ, "--shots", "many"],
    ["run", GHZ, "--seed", "-1"],
    ["run", GHZ, "--device", "TPU"],
    ["run"],
    [],
])
def test_usage_errors_exit_2(capsys, argv):
    _assert_failed(capsys, argv, 2)


def test_gpu_request_without_gpu(capsys):
    if devices.GPU.report.usable:
        pytest.skip("a GPU is usable here")
    _assert_failed(capsys, ["run", GHZ, "--device", "GPU"], 1, "device='GPU'", "is not usable")
    _assert_failed(capsys, ["bench", "--device", "GPU", "--families", "ghz", "--qubits", "4"],
                   1, "device='GPU'", "is not usable")


def test_ctrl_c_cancels_the_job(capsys, tmp_path, monkeypatch):
    """Ctrl-C while the job runs (held inside its first gate on a fake device, so the job
    cannot finish first) cancels it."""
    import gpuprovider.backend as backend_module
    from support.fake_device import FakeKernels, fake_device

    kernels = FakeKernels(hold=True)
    held = fake_device(kernels)

    class HeldSimulator(backend_module.GPUSimulator):
        def __init__(self, device: str = "auto", **options) -> None:
            super().__init__(device=held, **options)

    def interrupt(_seconds: float) -> None:
        assert kernels.entered.wait(30), "the job never reached its first gate"
        raise KeyboardInterrupt

    monkeypatch.setattr(backend_module, "GPUSimulator", HeldSimulator)
    monkeypatch.setattr(cli, "sleep", interrupt)
    path = write(tmp_path, 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[2];\n'
                           "h q[0];\nmeasure q[0] -> c[0];\nreset q[0];\ncx q[0], q[1];\n"
                           "measure q -> c;\n")
    try:
        _assert_failed(capsys, ["run", path, "--shots", "1000000"], 130, "cancelled")
    finally:
        kernels.resume.set()


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gpuprovider {__version__}"


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "run" in out and "info" in out


def test_info(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "CPU: usable" in out
    assert devices.GPU.report.reason in out
    assert f"gpuprovider {__version__}" in out and "numba" in out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert set(info["versions"]) == {"gpuprovider", "qiskit", "numpy", "numba"}
    cpu, gpu = info["devices"]["CPU"], info["devices"]["GPU"]
    assert cpu["usable"] is True and cpu["max_qubits"]["single"] == cpu["max_qubits"]["double"] + 1
    assert gpu["reason"] and ("max_qubits" in gpu) == gpu["usable"]
    assert info["auto_device"] == ("GPU" if gpu["usable"] else "CPU")
    assert info["numba"]["num_threads"] >= 1


def test_console_script():
    script = shutil.which("gpuprovider", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-m", "gpuprovider.cli"]
    done = subprocess.run([*command, "run", GHZ, "--shots", "100", "--seed", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith("  ")]
    assert {row[0] for row in rows} <= {"00000", "11111"}
    assert sum(int(row[1]) for row in rows) == 100
    assert "seed 1" in done.stdout
