package tenant

import (
	"time"
)

// Usage counts what a tenant (or one task) used.
type Usage struct {
	// TasksSubmitted, TasksCompleted, TasksFailed and TasksCancelled count tasks.
	TasksSubmitted int64 `json:"tasks_submitted"`
	TasksCompleted int64 `json:"tasks_completed"`
	TasksFailed    int64 `json:"tasks_failed"`
	TasksCancelled int64 `json:"tasks_cancelled"`
	// ExecSeconds is wall time spent executing attempts.
	ExecSeconds float64 `json:"exec_seconds"`
	// CPUSeconds is ExecSeconds × the requested CPU (1 when unset).
	CPUSeconds float64 `json:"cpu_seconds"`
	// GPUSeconds is ExecSeconds × the requested GPUs (constraints.gpu, or
	// 1 for a gpu=true label alone).
	GPUSeconds float64 `json:"gpu_seconds"`
	// BytesIn is payload bytes received.
	BytesIn int64 `json:"bytes_in"`
	// BytesOut is result bytes produced.
	BytesOut int64 `json:"bytes_out"`
	// ByteSeconds integrates bytes stored over time (for GB-months).
	ByteSeconds float64 `json:"byte_seconds"`
}

// Add adds o to u.
func (u *Usage) Add(o Usage) {
	u.TasksSubmitted += o.TasksSubmitted
	u.TasksCompleted += o.TasksCompleted
	u.TasksFailed += o.TasksFailed
	u.TasksCancelled += o.TasksCancelled
	u.ExecSeconds += o.ExecSeconds
	u.CPUSeconds += o.CPUSeconds
	u.GPUSeconds += o.GPUSeconds
	u.BytesIn += o.BytesIn
	u.BytesOut += o.BytesOut
	u.ByteSeconds += o.ByteSeconds
}

// Prices is the price table (USD) that turns usage into cost.
type Prices struct {
	// CPUSecond is the price of one CPU-second of execution.
	CPUSecond float64 `json:"cpu_second_usd" yaml:"cpu_second_usd"`
	// GPUSecond is the price of one GPU-second of execution.
	GPUSecond float64 `json:"gpu_second_usd" yaml:"gpu_second_usd"`
	// GBMonth is the price of storing 1 GB (10^9 bytes) for 30 days.
	GBMonth float64 `json:"gb_month_usd" yaml:"gb_month_usd"`
	// GBMoved is the price of 1 GB of payload in plus result out.
	GBMoved float64 `json:"gb_moved_usd" yaml:"gb_moved_usd"`
	// Task is the price of one submitted task.
	Task float64 `json:"task_usd" yaml:"task_usd"`
}

const (
	gb           = 1e9
	monthSeconds = 30 * 24 * 3600
)

// Cost is usage priced.
type Cost struct {
	// CPU, GPU, Storage, Transfer and Tasks are the parts; Total their sum.
	CPU      float64 `json:"cpu_usd"`
	GPU      float64 `json:"gpu_usd"`
	Storage  float64 `json:"storage_usd"`
	Transfer float64 `json:"transfer_usd"`
	Tasks    float64 `json:"tasks_usd"`
	Total    float64 `json:"total_usd"`
}

// Price returns the cost of u.
func (p Prices) Price(u Usage) Cost {
	c := Cost{
		CPU:      u.CPUSeconds * p.CPUSecond,
		GPU:      u.GPUSeconds * p.GPUSecond,
		Storage:  u.ByteSeconds / gb / monthSeconds * p.GBMonth,
		Transfer: float64(u.BytesIn+u.BytesOut) / gb * p.GBMoved,
		Tasks:    float64(u.TasksSubmitted) * p.Task,
	}
	c.Total = c.CPU + c.GPU + c.Storage + c.Transfer + c.Tasks
	return c
}

// Validate refuses negative or non-finite prices.
func (p Prices) Validate(prefix string) error {
	for name, v := range map[string]float64{"cpu_second_usd": p.CPUSecond, "gpu_second_usd": p.GPUSecond, "gb_month_usd": p.GBMonth, "gb_moved_usd": p.GBMoved, "task_usd": p.Task} {
		if v < 0 || v != v || v > 1e9 {
			return invalidPrice(prefix+name, v)
		}
	}
	return nil
}

// Bucket is the start of the hour that holds t (usage is kept per hour).
func Bucket(t time.Time) time.Time { return t.UTC().Truncate(time.Hour) }
