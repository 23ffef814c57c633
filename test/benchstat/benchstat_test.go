package benchstat

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The median's interval is the order statistics a binomial(n, 1/2) puts
// outside with at most 2.5 % on each side: x(1), x(6) for 6 values (1/64
// each side); x(14), x(27) for 40 (P(X <= 13) = 0.019, P(X <= 14) = 0.040);
// x(470), x(532) for 1001 and x(2431), x(2570) for 5000, where 0.5^n
// underflows a float64 and the terms must come from log space.
func TestMedianCI(t *testing.T) {
	_, _, _, ok := MedianCI([]float64{1, 2, 3, 4, 5})
	require.False(t, ok)
	x6 := []float64{6, 2, 4, 1, 5, 3}
	med, lo, hi, ok := MedianCI(x6)
	require.True(t, ok)
	require.Equal(t, []float64{3.5, 1, 6}, []float64{med, lo, hi})
	require.Equal(t, []float64{6, 2, 4, 1, 5, 3}, x6, "the values are not reordered")
	for _, tc := range []struct {
		n           int
		med, lo, hi float64
	}{{40, 20.5, 14, 27}, {1001, 501, 470, 532}, {5000, 2500.5, 2431, 2570}} {
		var x []float64
		for i := tc.n; i >= 1; i-- {
			x = append(x, float64(i))
		}
		med, lo, hi, ok = MedianCI(x)
		require.True(t, ok, tc.n)
		require.Equal(t, []float64{tc.med, tc.lo, tc.hi}, []float64{med, lo, hi}, tc.n)
	}
}
