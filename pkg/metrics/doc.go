// Package metrics holds gpu-nri's Prometheus metrics and its small HTTP
// endpoint: /metrics, /healthz and /readyz.
//
// Every metric lives in the Metrics value's own prometheus.Registry; nothing
// is registered with the global default registry, so several Metrics values
// (tests, or a daemon restarted in-process) never collide.
//
// Metric names are stable (documented in docs/logging.md):
//
//	gpu_nri_create_container_seconds{outcome}   histogram of CreateContainer handling time
//	gpu_nri_containers_total{outcome}           containers handled: injected, not-gpu, refused, error
//	gpu_nri_devices_injected_total              GPU devices (not device nodes) given to containers
//	gpu_nri_inventory_refreshes_total           inventory (re)loads attempted
//	gpu_nri_inventory_refresh_errors_total      inventory (re)loads that failed
//	gpu_nri_compute_ready                       1 when CUDA can run with the inventory (no compute problems), else 0
//	gpu_nri_nri_connected                       1 while registered with the runtime, else 0
//	gpu_nri_nri_reconnects_total                reconnections after the runtime closed the connection
//	gpu_nri_build_info{version,goversion}       always 1
//
// and the CreateContainer watchdog (watchdog.go), fed by CreateStarted and
// CreateDone with two atomics, no lock:
//
//	gpu_nri_create_container_in_flight          requests being handled now
//	gpu_nri_create_container_busy_seconds       time at least one has been in flight without a break
//	gpu_nri_create_container_slow_total         runs over 100 ms, counted when they end
//
// plus the standard go_* and process_* collectors.
//
// /healthz answers 200 while the process can serve HTTP at all. /readyz
// answers 200 when the ready function returns nil and 503 with the error text
// otherwise; the daemon's ready function reports "registered with the runtime
// and inventory loaded". The package does not log.
package metrics
