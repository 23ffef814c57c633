package harness

import (
	"context"
	"errors"
	"testing"
	"time"
)

// DefaultTimeout is how long a container may run before a test fails.
const DefaultTimeout = 20 * time.Second

// Pod starts a suite pod and removes it when the test ends.
func (e *Env) Pod(t testing.TB, name, handler string, annotations map[string]string) *Pod {
	t.Helper()
	p, err := e.RunPod(context.Background(), name, handler, annotations)
	if err != nil {
		t.Fatalf("pod %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := p.Remove(context.Background()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p
}

// MustRun runs a container to completion in p (create, start, wait, logs)
// and fails the test when it cannot.
func (p *Pod) MustRun(t testing.TB, c Container) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*DefaultTimeout)
	defer cancel()
	res, err := p.Run(ctx, c, DefaultTimeout)
	if err != nil {
		t.Fatalf("container %s: %v (output so far: %q)", c.Name, err, res.Output)
	}
	return res
}

// CreateRefused creates a container that must be refused and returns the
// runtime's error text; a container that is created fails the test.
func (p *Pod) CreateRefused(t testing.TB, c Container) string {
	t.Helper()
	id, err := p.Create(context.Background(), c)
	if err == nil {
		t.Fatalf("container %s: created (%s), want a refusal", c.Name, id)
	}
	var ce *CreateError
	if !errors.As(err, &ce) {
		t.Fatalf("container %s: %v", c.Name, err)
	}
	return ce.Message
}
