"""``gpuprovider bench``: the table with ratios, the PNG and JSON it writes, bad values."""

from __future__ import annotations

import json

import pytest

from gpuprovider import benchsuite
from gpuprovider.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_bench_prints_ratios_and_writes_plot_and_json(capsys, tmp_path):
    plot, figures = tmp_path / "bench.png", tmp_path / "bench.json"
    argv = ["bench", "--families", "ghz,random", "--qubits", "4,6", "--repeats", "1",
            "--shots", "100", "--device", "CPU", "--plot", str(plot), "--json", str(figures)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "peer/ours" in out
    table = [line.split() for line in out.splitlines() if line.startswith(("ghz", "random"))]
    assert {(cells[0], cells[1]) for cells in table} == {
        (family, size) for family in ("ghz", "random") for size in ("4", "6")}
    statevector_rows = [cells for cells in table if cells[2] == "statevector"]
    assert len(statevector_rows) == 4 and all(cells[-1].endswith("x") for cells in statevector_rows)
    assert plot.read_bytes().startswith(PNG_MAGIC) and plot.stat().st_size > 1000
    document = json.loads(figures.read_text())
    assert document["config"]["qubits"] == [4, 6] and document["config"]["shots"] == 100
    rows = document["rows"]
    pairs = sum(len(sim.precisions) for sim in benchsuite.SIMULATORS.values())
    assert len(rows) == 2 * 2 * pairs
    for row in rows:
        if row["simulator"] != "gpuprovider" and row["seconds"] is not None:
            ours = next(r for r in rows if (r["simulator"], r["family"], r["num_qubits"],
                        r["precision"]) == ("gpuprovider", row["family"], row["num_qubits"],
                                            row["precision"]))
            assert row["peer_over_ours"] == pytest.approx(row["seconds"] / ours["seconds"])
            assert len(row["runs"]) == 1


def test_bench_precision_double_leaves_qsim_out(capsys):
    argv = ["bench", "--families", "qft", "--qubits", "3", "--repeats", "1", "--shots", "10",
            "--simulators", "gpuprovider,qsim", "--precisions", "double", "--device", "CPU"]
    assert main(argv) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()
            if line.startswith("qft")]
    assert [cells[2:4] for cells in rows] == [["gpuprovider", "double"]]


@pytest.mark.parametrize(("option", "value", "allowed"), [
    ("--families", "ghz,bell", "ghz, qft, qv, random"),
    ("--simulators", "cirq", "gpuprovider, aer, qsim, statevector"),
    ("--precisions", "half", "double, single"),
    ("--qubits", "1-4", "16-26"),
    ("--qubits", "20-", "16-26"),
    ("--repeats", "0", "positive integer"),
    ("--shots", "x", "positive integer"),
    ("--budget-s", "0", "positive number"),
    ("--device", "TPU", "auto"),
])
def test_bad_values_exit_2_naming_value_and_choices(capsys, option, value, allowed):
    assert main(["bench", option, value]) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith("gpuprovider: error: argument " + option)
    assert repr(value.split(",")[-1]) in error and allowed in error


def test_qubit_sizes_accept_ranges_steps_and_lists():
    assert benchsuite.parse_sizes("16-20:2,25") == (16, 18, 20, 25)
    assert benchsuite.parse_sizes("4-6") == (4, 5, 6)
    assert benchsuite.parse_sizes(" 8 ,4") == (4, 8)
