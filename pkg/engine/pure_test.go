package engine_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The engine reads nothing from the host: its non-test files import no
// package that reads files, runs programs or asks the driver. Everything it
// knows of the host comes through the injected Host.
func TestEngineImportsNothingThatReadsTheHost(t *testing.T) {
	forbidden := []string{"os", "os/exec", "syscall", "golang.org/x/sys/unix", "io/ioutil", "path/filepath",
		"github.com/gpu-nri/gpu-nri/pkg/nvmlfacts", "github.com/gpu-nri/gpu-nri/pkg/hostsrc", "github.com/NVIDIA/go-nvml/pkg/nvml"}
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		ast, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range ast.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			require.NotContains(t, forbidden, path, "%s imports %s", f, path)
		}
		checked++
	}
	require.Positive(t, checked)
}
