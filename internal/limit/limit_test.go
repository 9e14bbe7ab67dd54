package limit

import (
	"sync"
	"testing"
)

func TestCounter(t *testing.T) {
	c := NewCounter(2)
	for i := 0; i < 2; i++ {
		if !c.TryAcquire() {
			t.Fatalf("acquisition %d of 2 refused", i+1)
		}
	}
	if c.TryAcquire() {
		t.Fatal("third acquisition allowed with max 2")
	}
	c.SetMax(1)
	c.Release()
	if c.TryAcquire() {
		t.Fatal("acquired with 1 in use and max 1")
	}
	c.Release()
	if got := c.InUse(); got != 0 {
		t.Fatalf("InUse = %d, want 0", got)
	}
	c.Release() // unmatched: ignored
	if got := c.InUse(); got != 0 {
		t.Fatalf("InUse after unmatched Release = %d, want 0", got)
	}
	if !c.TryAcquire() || c.TryAcquire() {
		t.Fatal("max 1 not applied")
	}
	c.SetMax(0)
	for i := 0; i < 100; i++ {
		if !c.TryAcquire() {
			t.Fatal("unlimited counter refused")
		}
	}
	if c.Max() != 0 || c.InUse() != 101 {
		t.Fatalf("Max %d InUse %d, want 0 and 101", c.Max(), c.InUse())
	}
}

func TestCounterZeroValueUnlimited(t *testing.T) {
	var c Counter
	if !c.TryAcquire() {
		t.Fatal("zero Counter refused")
	}
}

func TestCounterConcurrent(t *testing.T) {
	c := NewCounter(10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if c.TryAcquire() {
				mu.Lock()
				got++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if got != 10 || c.InUse() != 10 {
		t.Fatalf("acquired %d (InUse %d), want 10", got, c.InUse())
	}
}
