package ai

import "github.com/grey-distributed/grey/task"

// FrameworkLabelPrefix starts the worker labels that say which frameworks a
// node serves ("grey.ai/pytorch=true").
const FrameworkLabelPrefix = "grey.ai/"

// GPULabel is the label of a node whose runtimes have a CUDA device
// ("gpu=true"); a task that asks for it is charged GPU-seconds.
const GPULabel = task.GPULabel

// ModelDigestHeader is the task header in which the server stamps, at
// submit, the digest of the model an inference task resolved to; the
// scheduler prefers workers that report that model warm. Users cannot set
// it (task.ReservedHeaderPrefix).
const ModelDigestHeader = task.ModelDigestHeader

// FrameworkLabel is the worker label of nodes serving framework f
// ("grey.ai/pytorch"), with the value "true".
func FrameworkLabel(f Framework) string { return FrameworkLabelPrefix + string(f) }

// Labels returns the worker labels a node advertises for its runtimes:
// grey.ai/<framework>=true for every framework one of them serves, and
// gpu=true when one of them has a CUDA device. Nil when infos is empty.
func Labels(infos []RuntimeInfo) map[string]string {
	var l map[string]string
	set := func(k string) {
		if l == nil {
			l = make(map[string]string)
		}
		l[k] = "true"
	}
	for _, in := range infos {
		for f := range in.Frameworks {
			if f.Valid() {
				set(FrameworkLabel(f))
			}
		}
		if in.HasGPU() {
			set(GPULabel)
		}
	}
	return l
}

// MergeLabels returns the configured worker labels (worker.labels) with the
// runtime labels added; a label set in configured wins (an operator can
// say gpu=false). Neither map is changed.
func MergeLabels(configured, runtime map[string]string) map[string]string {
	if len(runtime) == 0 {
		return configured
	}
	out := make(map[string]string, len(configured)+len(runtime))
	for k, v := range runtime {
		out[k] = v
	}
	for k, v := range configured {
		out[k] = v
	}
	return out
}
