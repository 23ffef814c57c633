// Package config is gpu-nri's configuration schema: the Go types, their
// defaults, strict YAML loading and validation.
//
// Every key of the file is documented on its field and in config/README.md;
// config/default.yaml is the output of `gpu-nri config default` and
// config/examples/ holds the shipped policy profiles.
//
// Guarantees: Load rejects unknown keys (with the key's name) and invalid
// values; a zero-value file gives Default(). policy.profile selects the
// rules every source starts from (ProfilePolicy); a source listed under
// policy.sources replaces that source's rule. The package holds no state.
// It does not read the host, decide anything, or log.
package config
