// A fixed "random-looking" 6-qubit circuit: two layers of rotations and entanglers.
// Most of the 64 outcomes show up, so `gpuprovider run` lists the top 20.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[6];
creg c[6];
u3(0.7, 0.1, 2.3) q[0];
u3(1.9, 0.4, 0.2) q[1];
u3(0.3, 2.8, 1.1) q[2];
u3(2.6, 1.7, 0.5) q[3];
u3(1.2, 0.9, 3.0) q[4];
u3(2.1, 2.2, 0.6) q[5];
cx q[0], q[1];
cx q[2], q[3];
cx q[4], q[5];
rz(1.3) q[1];
ry(0.8) q[2];
rx(2.4) q[5];
cz q[1], q[2];
cx q[3], q[4];
ccx q[5], q[0], q[3];
u3(1.5, 0.3, 1.8) q[0];
u3(0.9, 2.5, 0.4) q[3];
measure q -> c;
