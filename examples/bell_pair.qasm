// A biased Bell pair: cos(pi/6)|00> + sin(pi/6)|11>, so 00 in about 75% of shots and 11 in
// the rest; the two bits always agree.
OPENQASM 3.0;
include "stdgates.inc";

qubit[2] q;
bit[2] c;

ry(pi/3) q[0];
cx q[0], q[1];

c = measure q;
