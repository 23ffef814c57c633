// Package hostsrc is the one place the daemon and the tools read the real
// host for a decision: it builds the inventory watcher (pkg/inventory, with
// NVML or nvidia-smi facts from pkg/nvmlfacts and the MPS pipe directory),
// the CDI cache over injection.cdiSpecDirs (tags.cncf.io/container-device-
// interface) and the stat(2) of third-party CDI device nodes, all under the
// host view of one configuration, and offers them as an engine.Host.
//
// pkg/engine stays pure: it decides from the engine.Host it is given. The
// daemon (plugin.New) and the CLI (`gpu-nri explain`, `cdi generate`,
// `doctor`) open a Host here; tests open one over a simulated host tree
// with WithNodeStater and WithGPUFacts, the same options production uses to
// turn facts off (WithoutFacts, the CLI's --no-nvml).
//
// Guarantees: Open discovers once and never fails on a host without a
// driver (Inventory is then nil and Err says why); RefreshIfStale
// rediscovers at most once per MinRediscoverInterval; broken third-party
// CDI specs do not stop gpu-nri's own devices (CDIErr reports them, the
// valid ones are served). A Host is safe for concurrent use.
//
// It does not decide, log or poll by itself: Watcher().Run polls when the
// caller wants it.
package hostsrc
