package benchstat

import (
	"math"
	"sort"
)

// MedianCI is the median of x and a distribution-free interval holding the
// true median with at least 95 % confidence: the order statistics x(j) and
// x(n+1-j) for the largest j with P(Binomial(n, 1/2) < j) <= 0.025. The
// binomial terms are computed in log space, so any n works. ok is false
// below 6 values, where no such interval exists. x is not reordered.
func MedianCI(x []float64) (med, lo, hi float64, ok bool) {
	n := len(x)
	if n < 6 {
		return 0, 0, 0, false
	}
	s := append([]float64(nil), x...)
	sort.Float64s(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	// cdf accumulates P(X <= k) for X ~ Binomial(n, 1/2).
	lnN, _ := math.Lgamma(float64(n + 1))
	j, cdf := 0, 0.0
	for k := 0; k < n; k++ {
		lk, _ := math.Lgamma(float64(k + 1))
		lnk, _ := math.Lgamma(float64(n - k + 1))
		cdf += math.Exp(lnN - lk - lnk - float64(n)*math.Ln2)
		if cdf > 0.025 {
			break
		}
		j = k + 1 // P(X < j) = P(X <= k) <= 0.025
	}
	if j == 0 {
		return med, 0, 0, false
	}
	return med, s[j-1], s[n-j], true
}
