// Package dra is gpu-nri's Kubernetes Dynamic Resource Allocation driver
// (resource.k8s.io/v1): the kubelet plugin that publishes the node's GPUs
// and MIG devices as ResourceSlices and prepares the ResourceClaims the
// scheduler allocated from them, and the lookup the NRI CreateContainer
// path uses to inject exactly a claim's devices.
//
// What it does:
//   - Resources turns an inventory into the driver's ResourceSlice pool
//     (one pool named after the node): every GPU without MIG as "gpu-<index>",
//     every MIG device as "mig-<gpu>-gi<GI>-ci<CI>", with the attributes a
//     user selects on in CEL (see Devices). The daemon publishes it again on
//     every inventory change, so no device that left the host stays published.
//   - Driver.PrepareResourceClaims checks each allocated device against the
//     current inventory (unknown device, device gone, MIG device whose GPU
//     left MIG mode: the claim fails with an error naming the claim, the
//     device and the reason, which the kubelet reports as a pod event),
//     records the claim in a checkpoint file, writes a names-only CDI spec
//     (kind <driver>/claim, one device per allocated device, edits only a
//     marker variable and a guard mount of a source that does not exist)
//     so the runtime accepts the CDI names the kubelet passes, and returns
//     those names. The NRI answer removes the guards (GuardMounts): a claim
//     container created without gpu-nri's answer fails at the runtime's
//     mount instead of starting without its GPUs, on every runtime. Prepare is idempotent;
//     UnprepareResourceClaims removes the record and the spec.
//   - Driver.Grant answers the NRI path: for a container whose CDI names
//     (or marker variables) name prepared claim devices, the engine.Grant
//     of exactly those devices, only when the container's pod is one the
//     claim is reserved for, and only while each device is still in the
//     current inventory (a MIG device whose GPU left MIG mode since prepare
//     fails the container with the claim, the device and the reason). The
//     grant goes through engine.Decide like every other request
//     (capabilities, requirements, MIG management policy).
//
// Guarantees: a device is prepared for at most one claim at a time; the
// checkpoint is written (atomically) before prepare returns, so a gpu-nri
// restart between prepare and container creation loses nothing; a claim's
// devices reach only pods the claim is reserved for.
//
// What it does not do: allocate (the scheduler does), share a GPU between
// claims (no time-slicing or MPS), publish capacities other than memory
// (GPUs and MIG devices carry it when the driver reported it), or touch
// the host's devices: it writes only its checkpoint and its own CDI spec
// files.
package dra
