// 4-qubit quantum Fourier transform of the basis state |0101> (= 5).
// The QFT of a basis state has amplitudes of equal size (only the phases carry the 5),
// so all 16 outcomes appear about equally often.
OPENQASM 3.0;
include "stdgates.inc";

qubit[4] q;
bit[4] c;

x q[0];
x q[2];

h q[3];
cp(pi/2) q[2], q[3];
cp(pi/4) q[1], q[3];
cp(pi/8) q[0], q[3];
h q[2];
cp(pi/2) q[1], q[2];
cp(pi/4) q[0], q[2];
h q[1];
cp(pi/2) q[0], q[1];
h q[0];
swap q[0], q[3];
swap q[1], q[2];

c = measure q;
