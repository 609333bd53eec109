// Command limit is the benchmark's yardstick: the least a client can do to add a debug
// container to every selected pod and wait for it to run, or to collect status and logs.
//
// It sends exactly the requests the job needs and nothing else: one LIST per namespace,
// one watch per namespace (from the LIST's resourceVersion), one strategic-merge PATCH
// of pods/<name>/ephemeralcontainers per pod that lacks the container, and, to collect,
// one log GET per container. Requests run at -concurrency at once over client-go's
// shared HTTP/2 connection, with client-go's own rate limiter off: the API server's
// Priority and Fairness is the only brake, as it is for the collection.
//
// It prints one JSON object: what it did, how long it took and what it saw.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// counter counts every response by method and status, below client-go's retries.
type counter struct {
	next      http.RoundTripper
	mu        sync.Mutex
	byRequest map[string]int
	throttled atomic.Int64
}

func (c *counter) RoundTrip(req *http.Request) (*http.Response, error) {
	kind := req.Method
	q := req.URL.Query()
	switch {
	case q.Get("watch") == "true" || q.Get("watch") == "1":
		kind = "WATCH"
	case strings.HasSuffix(req.URL.Path, "/log"):
		kind = "GET log"
	case req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/pods"):
		kind = "LIST"
	}
	c.mu.Lock()
	c.byRequest[kind]++
	c.mu.Unlock()
	resp, err := c.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		c.throttled.Add(1)
	}
	return resp, err
}

type result struct {
	Mode        string         `json:"mode"`
	Pods        int            `json:"pods"`
	Patched     int            `json:"patched"`
	Done        int            `json:"done"`
	LogBytes    int64          `json:"log_bytes"`
	Seconds     float64        `json:"seconds"`
	Concurrency int            `json:"concurrency"`
	Requests    map[string]int `json:"requests"`
	Throttled   int64          `json:"throttled"`
	Errors      []string       `json:"errors"`
}

type podRef struct{ ns, name string }

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file")
	namespaces := flag.String("namespaces", "", "comma-separated namespaces")
	selector := flag.String("selector", "", "label selector")
	mode := flag.String("mode", "add", "add (and wait until running) or collect (status and logs)")
	name := flag.String("container", "dbg", "ephemeral container name")
	image := flag.String("image", "docker.io/library/busybox:1.36", "image")
	command := flag.String("command", "sleep 3600", "command, split on spaces")
	concurrency := flag.Int("concurrency", 49, "requests in flight at once")
	timeout := flag.Duration("timeout", 30*time.Minute, "give up after this long")
	flag.Parse()

	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail(err)
	}
	cfg.QPS, cfg.Burst = -1, 0 // no client-side rate limit
	cnt := &counter{byRequest: map[string]int{}}
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { cnt.next = rt; return cnt })
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		fail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	res := result{Mode: *mode, Concurrency: *concurrency, Errors: []string{}}
	var errMu sync.Mutex
	addErr := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(res.Errors) < 20 {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	start := time.Now()
	nss := strings.Split(*namespaces, ",")
	switch *mode {
	case "add":
		add(ctx, cs, nss, *selector, *name, *image, strings.Fields(*command), *concurrency, &res, addErr)
	case "collect":
		collect(ctx, cs, nss, *selector, *name, *concurrency, &res, addErr)
	default:
		fail(fmt.Errorf("unknown -mode %q", *mode))
	}
	res.Seconds = time.Since(start).Seconds()
	res.Requests = cnt.byRequest
	res.Throttled = cnt.throttled.Load()
	_ = json.NewEncoder(os.Stdout).Encode(res)
	if len(res.Errors) > 0 {
		os.Exit(1)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "limit:", err)
	os.Exit(2)
}

func hasContainer(pod *corev1.Pod, name string) bool {
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return true
		}
	}
	return false
}

func isRunning(pod *corev1.Pod, name string) bool {
	for _, s := range pod.Status.EphemeralContainerStatuses {
		if s.Name == name && (s.State.Running != nil || s.State.Terminated != nil) {
			return true
		}
	}
	return false
}

// pool runs work for every item with n at a time.
func pool[T any](items []T, n int, work func(T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range ch {
				work(it)
			}
		}()
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
}

func add(ctx context.Context, cs *kubernetes.Clientset, nss []string, selector, name, image string, command []string,
	n int, res *result, addErr func(error)) {
	spec := map[string]any{"spec": map[string]any{"ephemeralContainers": []map[string]any{{
		"name": name, "image": image, "command": command, "imagePullPolicy": "IfNotPresent",
		"terminationMessagePolicy": "File",
	}}}}
	var (
		mu      sync.Mutex
		todo    []podRef
		pending = map[podRef]bool{} // selected pods whose container is not running yet
		allDone = make(chan struct{})
		closed  bool
	)
	markDone := func(ref podRef) {
		mu.Lock()
		defer mu.Unlock()
		if pending[ref] {
			delete(pending, ref)
			res.Done++
		}
		if len(pending) == 0 && !closed {
			closed = true
			close(allDone)
		}
	}
	watchers := make([]watch.Interface, 0, len(nss))
	var wmu sync.Mutex
	var wg sync.WaitGroup
	for _, ns := range nss {
		wg.Add(1)
		go func(ns string) {
			defer wg.Done()
			list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				addErr(err)
				return
			}
			waiting := 0
			mu.Lock()
			for i := range list.Items {
				p := &list.Items[i]
				ref := podRef{ns, p.Name}
				res.Pods++
				if !isRunning(p, name) {
					pending[ref] = true
					waiting++
				}
				if !hasContainer(p, name) {
					todo = append(todo, ref)
				}
			}
			mu.Unlock()
			if waiting == 0 {
				return // nothing to wait for here: no watch
			}
			timeout := int64(1800)
			w, err := cs.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{
				LabelSelector: selector, ResourceVersion: list.ResourceVersion, TimeoutSeconds: &timeout,
				AllowWatchBookmarks: true,
			})
			if err != nil {
				addErr(err)
				return
			}
			wmu.Lock()
			watchers = append(watchers, w)
			wmu.Unlock()
			go func() {
				for ev := range w.ResultChan() {
					if pod, ok := ev.Object.(*corev1.Pod); ok && isRunning(pod, name) {
						markDone(podRef{ns, pod.Name})
					}
				}
			}()
		}(ns)
	}
	wg.Wait()
	mu.Lock()
	if len(pending) == 0 && !closed {
		closed = true
		close(allDone)
	}
	mu.Unlock()
	var patched atomic.Int64
	pool(todo, n, func(ref podRef) {
		body, _ := json.Marshal(spec)
		_, err := cs.CoreV1().Pods(ref.ns).Patch(ctx, ref.name, types.StrategicMergePatchType, body, metav1.PatchOptions{},
			"ephemeralcontainers")
		if err != nil {
			addErr(fmt.Errorf("%s/%s: %w", ref.ns, ref.name, err))
			markDone(ref) // not coming: do not wait for it
			return
		}
		patched.Add(1)
	})
	res.Patched = int(patched.Load())
	select {
	case <-allDone:
	case <-ctx.Done():
		addErr(fmt.Errorf("timed out waiting for %d containers to run", len(pending)))
	}
	for _, w := range watchers {
		w.Stop()
	}
}

func collect(ctx context.Context, cs *kubernetes.Clientset, nss []string, selector, name string, n int, res *result,
	addErr func(error)) {
	var (
		mu    sync.Mutex
		todo  []podRef
		bytes atomic.Int64
		wg    sync.WaitGroup
	)
	for _, ns := range nss {
		wg.Add(1)
		go func(ns string) {
			defer wg.Done()
			list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
			if err != nil {
				addErr(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for i := range list.Items {
				res.Pods++
				if hasContainer(&list.Items[i], name) {
					todo = append(todo, podRef{ns, list.Items[i].Name})
				}
			}
		}(ns)
	}
	wg.Wait()
	var done atomic.Int64
	pool(todo, n, func(ref podRef) {
		raw, err := cs.CoreV1().Pods(ref.ns).GetLogs(ref.name, &corev1.PodLogOptions{Container: name}).DoRaw(ctx)
		if err != nil {
			addErr(fmt.Errorf("%s/%s: %w", ref.ns, ref.name, err))
			return
		}
		bytes.Add(int64(len(raw)))
		done.Add(1)
	})
	res.Done = int(done.Load())
	res.LogBytes = bytes.Load()
}


