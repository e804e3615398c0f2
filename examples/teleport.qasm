// Teleport RY(1.2)|0> from q[0] to q[2] with feed-forward, then undo the rotation there:
// out reads 0 on every shot; the two Bell-measurement bits are uniform.
OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
bit[2] bell;
bit[1] out;
ry(1.2) q[0];
h q[1];
cx q[1], q[2];
cx q[0], q[1];
h q[0];
bell[0] = measure q[0];
bell[1] = measure q[1];
if (bell[1]) x q[2];
if (bell[0]) z q[2];
ry(-1.2) q[2];
out[0] = measure q[2];
