// Command server is the only program in kd.local/server:1, a distroless-style
// target for the ephemeral-container tests: there is no shell or tool in its
// image, so anything a test wants to run next to it has to come from a debug
// container.
//
//	server -listen :8080 [-tcp 9000 -tcp 127.0.0.1:9001 ...]
//
// HTTP: "/" answers 200 "ok", "/healthz" 200, "/status/<code>" answers <code>
// (e.g. 503, to make a probe fail on demand). Every -tcp port is a plain TCP
// listener that accepts and closes, so port checks have something to find.
// One log line per request goes to stdout (the container log). SIGTERM and
// SIGINT shut it down cleanly with exit status 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// addrList collects repeated -tcp flags: "PORT" (every interface, as in a pod) or
// "HOST:PORT" (tests bind 127.0.0.1 only).
type addrList []string

func (a *addrList) String() string { return strings.Join(*a, ",") }

func (a *addrList) Set(value string) error {
	addr := value
	if !strings.Contains(value, ":") {
		addr = net.JoinHostPort("", value)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("not a TCP port or HOST:PORT: %q", value)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("not a TCP port: %q", value)
	}
	*a = append(*a, addr)
	return nil
}

// recorder remembers the status code so the access log can show it.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func logged(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, req)
		logger.Printf("http %s %s %d %s %s", req.Method, req.URL.Path, rec.status, req.RemoteAddr, time.Since(start).Round(time.Microsecond))
	})
}

func routes() *http.ServeMux {
	mux := http.NewServeMux()
	// "/{$}" matches only "/" itself, so unknown paths get a 404 a test can tell apart.
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/status/{code}", func(w http.ResponseWriter, req *http.Request) {
		code, err := strconv.Atoi(req.PathValue("code"))
		if err != nil || code < 100 || code > 599 {
			http.Error(w, "status code must be 100-599", http.StatusBadRequest)
			return
		}
		w.WriteHeader(code)
		fmt.Fprintln(w, http.StatusText(code))
	})
	return mux
}

// serveTCP accepts and closes connections until the listener is closed.
func serveTCP(logger *log.Logger, ln net.Listener, wg *sync.WaitGroup) {
	defer wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				logger.Printf("tcp %s: accept: %v", ln.Addr(), err)
			}
			return
		}
		logger.Printf("tcp %s accepted %s", ln.Addr(), conn.RemoteAddr())
		_ = conn.Close()
	}
}

func run() error {
	listen := flag.String("listen", ":8080", "HTTP listen address")
	var tcpAddrs addrList
	flag.Var(&tcpAddrs, "tcp", "extra TCP `PORT` (or HOST:PORT) that accepts and closes connections (repeatable)")
	flag.Parse()

	// No timestamps: the container runtime stamps every log line already.
	logger := log.New(os.Stdout, "", 0)

	// Listen before announcing readiness, so a bad address fails the container at once.
	httpLn, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var tcpLns []net.Listener
	for _, addr := range tcpAddrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		tcpLns = append(tcpLns, ln)
		wg.Add(1)
		go serveTCP(logger, ln, &wg)
	}

	srv := &http.Server{Handler: logged(logger, routes()), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(httpLn) }()
	tcpBound := make([]string, len(tcpLns))
	for i, ln := range tcpLns {
		tcpBound[i] = ln.Addr().String()
	}
	logger.Printf("server listening on %s (http) [%s] (tcp)", httpLn.Addr(), strings.Join(tcpBound, " "))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Printf("server shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	for _, ln := range tcpLns {
		_ = ln.Close()
	}
	wg.Wait()
	return err
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		os.Exit(1)
	}
}
