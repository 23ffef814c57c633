// Package hookproto is the contract between the plugin and the code that
// makes injected libraries loadable in a container: the argv of
// `gpu-nri hook` and the rule of the hookless mode.
//
// # What it does
//
//   - Options is everything one hook invocation does (links, loader
//     folders, host ldconfig, CUDA compat, params hiding). The plugin turns
//     it into the OCI hook's argv with Args; the hook (pkg/hook) reads it back
//     with ParseArgs. Those two functions are the only interface between the
//     two processes.
//   - Layout names the directories hookless mode mounts libraries into
//     (Layouts is the one list; ParseLayout refuses anything else), and
//     HooklessMounts, AliasNames and HooklessLibraryPath say what it mounts
//     and which LD_LIBRARY_PATH the fallback layout needs.
//
// # Guarantees
//
//   - Pure functions of their inputs (HooklessMounts also of the build's
//     GOARCH): no I/O, no syscalls, only the standard library, so pkg/edits
//     and the configuration import it without pulling in the hook's
//     namespace and file-descriptor code.
//   - ParseArgs(o.Args(bin)[2:]) returns o for the Options the plugin
//     builds (link targets without "::", an ldconfig whenever there are
//     folders); anything else it cannot read back is an error naming the
//     argument, never a silently different Options.
//
// # Does not
//
//   - check paths against a container root or the host: pkg/hook validates
//     Options again before it touches anything, and the plugin builds them
//     from its own inventory;
//   - choose between the hook and hookless mode (config.Injection.Loader).
package hookproto
