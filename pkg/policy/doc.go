// Package policy decides whether a container may have the GPUs it asks for:
// it authorizes request sources against the configured policy and checks
// NVIDIA_REQUIRE_* requirements against the host.
//
// # Authorization
//
// Compile turns a config.Policy into a *Policy once, at config load; it
// rejects unknown sources and malformed namespace globs (path.Match syntax),
// naming the config key. (*Policy).Authorize then runs per container create:
// it does no I/O, takes no locks, and does not modify its arguments.
//
// The rules, per request source (env, annotation, volume-mounts,
// cdi-annotation, cdi-devices):
//
//   - a source without a rule in policy.sources is refused;
//   - denyNamespaces (globs) refuse a matching namespace, and win over
//     allowNamespaces; a non-empty allowNamespaces refuses every namespace
//     that matches none of its globs;
//   - "all" is refused unless allowAll is set;
//   - when several permitted sources ask for the same thing (both all, both
//     none, or the same device ids as written) the most trusted one in
//     config.Sources order is honoured; when they differ, the trusted source
//     wins and the untrusted ones are refused (recorded in Decision.Refused,
//     not an error). Requests are never merged. Trusted sources that disagree,
//     or disagreeing sources of which none is trusted, refuse the request.
//
// A request refused entirely returns a *RefusedError naming the container,
// each input, the rule and the config key that would allow it (the daemon's
// audit line is built from the decision by engine.Answer.AuditFields).
//
// # Requirements
//
// ParseRequirement implements the grammar of NVIDIA_REQUIRE_* values: spaces
// separate alternatives (OR; any other white space, such as a tab, is an
// error, as NVIDIA's parser reads it as part of a condition), commas
// separate conditions (AND; an empty one is skipped, as NVIDIA skips it,
// and CheckRequirements returns a warning naming it); a
// condition is KEY OP VALUE with KEY cuda, driver, arch (compute capability)
// or brand and OP one of = != < <= > >=. Versions compare field by field as
// decimal numbers, missing trailing fields being 0 ("12.10" > "12.9",
// "12" == "12.0"); brand compares case-insensitively and takes only = and !=.
// Values are capped at MaxRequirementLen bytes.
//
// CheckRequirements evaluates every requirement per selected GPU (a MIG
// device's parent, passed by the caller) with three-valued logic: a
// condition on a property the host cannot report (no NVML: empty
// CUDAVersion, Arch or Brand) is unknown, and an expression that is neither
// true nor false because of it is handled per requirements.unverifiable:
// "refuse" returns an error saying which property is missing, "allow"
// returns a warning. Errors are *RequirementError values (joined), naming
// the variable, the constraint, the GPU (index and UUID) and the host value.
//
// # What this package does not do
//
// It does not parse container inputs (package request), resolve device ids
// against the inventory, read the host (package nvmlfacts fills the facts
// requirements need), or log: the daemon logs the decision and the warnings.
// Two spellings of one GPU (index "0" and its UUID) in two sources count as
// a disagreement, since resolution happens after authorization.
package policy
