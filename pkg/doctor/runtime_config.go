package doctor

import (
	"errors"
	"fmt"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

// The runtime configuration gpu-nri checks, as typed structs. The files are
// merged as maps first (containerd's imports and migration, CRI-O's
// drop-ins: see config_files.go), then the merged tree is decoded into these
// structs; keys doctor does not check are ignored. A pointer field is nil
// when no file sets the key.

// containerdHeader is what each containerd file says about itself.
type containerdHeader struct {
	// Version is the config version (absent: 1).
	Version int64 `toml:"version"`
	// Imports are more files to read (globs, relative to the file's dir).
	Imports []string `toml:"imports"`
}

// containerdConfig is containerd's merged configuration.
type containerdConfig struct {
	DisabledPlugins []string          `toml:"disabled_plugins"`
	Plugins         containerdPlugins `toml:"plugins"`
}

type containerdPlugins struct {
	NRI *containerdNRI `toml:"io.containerd.nri.v1.nri"`
	// CRIv2 is the CRI plugin of config version 2 (containerd 1.7).
	CRIv2 criPlugin `toml:"io.containerd.grpc.v1.cri"`
	// CRIv3 is the CRI runtime plugin of config versions 3 and 4.
	CRIv3 criPlugin `toml:"io.containerd.cri.v1.runtime"`
}

// containerdNRI is [plugins."io.containerd.nri.v1.nri"].
type containerdNRI struct {
	Disable              *bool                      `toml:"disable"`
	SocketPath           string                     `toml:"socket_path"`
	PluginPath           string                     `toml:"plugin_path"`
	PluginConfigPath     string                     `toml:"plugin_config_path"`
	PluginRequestTimeout string                     `toml:"plugin_request_timeout"`
	DisableConnections   bool                       `toml:"disable_connections"`
	DefaultValidator     containerdDefaultValidator `toml:"default_validator"`
}

type containerdDefaultValidator struct {
	Enable                  bool     `toml:"enable"`
	RequiredPlugins         []string `toml:"required_plugins"`
	RejectOCIHookAdjustment bool     `toml:"reject_oci_hook_adjustment"`
}

type criPlugin struct {
	Containerd criContainerd `toml:"containerd"`
}

type criContainerd struct {
	DefaultRuntimeName string                `toml:"default_runtime_name"`
	Runtimes           map[string]criRuntime `toml:"runtimes"`
}

type criRuntime struct {
	Options struct {
		BinaryName string `toml:"BinaryName"`
	} `toml:"options"`
}

// crioConfig is CRI-O's merged configuration.
type crioConfig struct {
	Crio struct {
		NRI     crioNRI `toml:"nri"`
		Runtime struct {
			DefaultRuntime string                 `toml:"default_runtime"`
			Runtimes       map[string]crioRuntime `toml:"runtimes"`
		} `toml:"runtime"`
	} `toml:"crio"`
}

// crioNRI is [crio.nri].
type crioNRI struct {
	EnableNRI          *bool  `toml:"enable_nri"`
	Listen             string `toml:"nri_listen"`
	PluginDir          string `toml:"nri_plugin_dir"`
	PluginConfigDir    string `toml:"nri_plugin_config_dir"`
	RequestTimeout     string `toml:"nri_plugin_request_timeout"`
	DisableConnections bool   `toml:"nri_disable_connections"`
	DefaultValidator   struct {
		Enable                  bool     `toml:"nri_enable_default_validator"`
		RequiredPlugins         []string `toml:"nri_validator_required_plugins"`
		RejectOCIHookAdjustment bool     `toml:"nri_validator_reject_oci_hook_adjustment"`
	} `toml:"default_validator"`
}

type crioRuntime struct {
	RuntimePath string `toml:"runtime_path"`
}

// decodeTree decodes a merged TOML tree into v (by writing it out again:
// go-toml decodes documents, not maps).
func decodeTree(tree map[string]any, v any) error {
	data, err := toml.Marshal(tree)
	if err != nil {
		return err
	}
	return toml.Unmarshal(data, v)
}

// decode decodes the merged configuration into v. An error names the file
// whose value won and the key, e.g. a string where a bool belongs.
func (c *layered) decode(v any) error {
	err := decodeTree(c.merged, v)
	if err == nil {
		return nil
	}
	var de *toml.DecodeError
	if errors.As(err, &de) && len(de.Key()) > 0 {
		return fmt.Errorf("%s: %s: %w", c.fileOf(de.Key()...), strings.Join(de.Key(), "."), err)
	}
	return fmt.Errorf("%s: %w", c.describe(), err)
}
