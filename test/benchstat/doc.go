// Package benchstat holds the statistics the bench tools (test/e2e/cmd/bench,
// test/e2e/cmd/nrirtt) report: the median of paired per-round values and a
// distribution-free 95 % interval for it. Test-only: nothing in the gpu-nri
// binary imports it. It computes from the values it is given and makes no
// assumption about their distribution; it does not decide what is paired.
package benchstat
