package pool_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/agentloop/agentloop/pool"
)

type reading struct {
	device string
	values []float64
}

func ExamplePool() {
	readings := pool.Pool[reading]{
		New:   func() *reading { return &reading{values: make([]float64, 0, 16)} },
		Reset: func(r *reading) { r.device, r.values = "", r.values[:0] },
	}

	r := readings.Get()
	r.device = "dev-42"
	r.values = append(r.values, 21.5, 21.7)
	fmt.Println(r.device, r.values)
	readings.Put(r) // reset, then kept for the next Get

	r = readings.Get() // recycled (or new: sync.Pool may drop objects)
	fmt.Printf("%q %v cap>=16:%v\n", r.device, r.values, cap(r.values) >= 16)

	s := readings.Stats()
	fmt.Println("gets:", s.Hits+s.Misses, "puts:", s.Puts)
	// Output:
	// dev-42 [21.5 21.7]
	// "" [] cap>=16:true
	// gets: 2 puts: 1
}

func ExampleBuffers() {
	var buffers pool.Buffers // the zero value is ready

	payload := []byte(`{"temp":21.5}`)
	b := buffers.Get(len(payload))
	copy(b.Bytes(), payload)

	// Publish to 3 subscribers: Get gave one reference, Retain adds the
	// other two. Every subscriber releases exactly once.
	const subscribers = 3
	b.Retain(subscribers - 1)
	var wg sync.WaitGroup
	for i := range subscribers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = b.Bytes()[i] // read-only while holding a reference
			b.Release()
		}()
	}
	wg.Wait()

	s := buffers.Stats()
	fmt.Println("gets:", s.Gets, "returns:", s.Returns, "live:", s.Live)
	// Output:
	// gets: 1 returns: 1 live: 0
}

func ExampleWorkers() {
	workers, err := pool.NewWorkers(4, pool.WithQueue(16))
	if err != nil {
		panic(err)
	}

	results := make(chan string, 1)
	err = workers.Submit(
		func() ([]byte, error) { return []byte("firmware v2.1"), nil }, // blocking I/O goes here
		func(res []byte, err error) { results <- fmt.Sprint(string(res), " ", err) },
	)
	if err != nil {
		panic(err) // ErrOverloaded: try later or shed the request
	}
	fmt.Println(<-results)

	if err := workers.Close(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println(workers.Submit(func() ([]byte, error) { return nil, nil }, func([]byte, error) {}))
	// Output:
	// firmware v2.1 <nil>
	// pool: workers closed
}
