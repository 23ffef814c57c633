// Package request reads what a container asks gpu-nri for.
//
// # What it does
//
// Parse turns an Input (the container's env, annotations, mounts and CDI
// devices, independent of NRI) into a Request: one SourceRequest per request
// source that asked, in config.Sources order, plus the driver capabilities,
// the NVIDIA_REQUIRE_* requirements and the extra features. The sources:
//
//   - env: NVIDIA_VISIBLE_DEVICES (last occurrence wins), and the legacy
//     CUDA image rule (CUDA_VERSION set, NVIDIA_REQUIRE_CUDA unset or empty
//     and NVIDIA_VISIBLE_DEVICES unset => all, with an implicit cuda>=X.Y
//     requirement). The legacy rule is an implicit default: it yields when
//     any other source asked.
//   - annotation: gpu-nri's pod annotations gpus.<domain>/container.<name>
//     (exact container key first), then gpus.<domain>/pod; and cdi.k8s.io/
//     pod annotations. Both are written by the pod's author.
//   - volume-mounts: the device plugin's mounts under
//     /var/run/nvidia-container-devices/ (<id>, cdi/<vendor>/<class>/<dev>
//     or cdi/<vendor>/<class>=<dev>, imex/<channel>).
//   - cdi-annotation: cdi.k8s.io/ container annotations (set by the kubelet
//     from a device plugin's response). A container annotation equal to a pod
//     annotation (the runtime copied it) counts as the pod's.
//   - cdi-devices: CRI/NRI Container.CDIDevices.
//
// Capabilities come from capabilities.<domain>/container.<name> or /pod,
// else NVIDIA_DRIVER_CAPABILITIES, else (a legacy CUDA image, as above, with
// NVIDIA_DRIVER_CAPABILITIES unset) every supported capability, else
// Options.DefaultCapabilities. NVIDIA_REQUIRE_JETPACK* variables are not
// requirements; NVIDIA_DISABLE_REQUIRE is read with strconv.ParseBool, as
// NVIDIA reads it.
// docs/requests.md lists every variable and annotation with examples.
//
// # Guarantees
//
//   - Pure and cheap: no file, network or clock access, no logging, no
//     package-level mutable state; Input is not modified. A typical CUDA
//     container costs two allocations, a non-GPU container none (see
//     BenchmarkParse).
//   - A container that asks for no GPU from any source gets (nil, nil), and
//     then nothing else is validated: junk in NVIDIA_DRIVER_CAPABILITIES of a
//     non-GPU container never fails it.
//   - Anything malformed or ambiguous in a GPU request is an *Error naming
//     the container, the exact input (NVIDIA_VISIBLE_DEVICES="0,x") and the
//     reason: unknown forms, lists of only commas, all/none/void mixed with
//     ids, NUL bytes, "..", absolute paths where ids are expected, values
//     over MaxValueLen bytes, lists over MaxItems items, indexes over
//     MaxIndex, unknown or unsupported capabilities (naming
//     injection.supportedCapabilities), malformed gpu-nri annotation keys.
//     A request is never silently dropped.
//   - Input that is merely untidy and has one obvious meaning, as NVIDIA
//     reads it, is accepted with a note in Request.Warnings naming the input:
//     empty items in device, capability and IMEX channel lists (not in CDI
//     name lists), a device, capability or channel named twice (counted
//     once), "all" in another case as a whole device list or MIG management
//     value, and an NVIDIA_DISABLE_REQUIRE value strconv.ParseBool cannot
//     read (false).
//   - Every returned Device is syntactically valid: IDs are normalized
//     (GPU-/MIG- upper case prefix with lower-case hex UUID; PCI bus ids
//     lower case with a 4-digit domain; CDI names validated by the CDI
//     parser). CDI names of Options.CDIKind are parsed into the GPU item they
//     name (nvidia.com/gpu=0 is index 0; Raw keeps the CDI name).
//   - Output order is deterministic (annotation keys are sorted).
//
// # What it does not do
//
//   - No resolution against the host inventory: whether GPU 3 or a UUID
//     exists, and whether an index and a UUID name the same GPU, is the
//     engine's job.
//   - No authorization: whether a source may ask, and which source wins when
//     several disagree, is the policy package's job.
//   - No evaluation of NVIDIA_REQUIRE_* expressions (only their length is
//     capped); the policy package parses and checks them.
package request
