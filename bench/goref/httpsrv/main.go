// httpsrv: the HTTP source and sink the benchmarks transfer through the proxies, run in the
// stock peer's namespace (or on the host, published by a tunless node).
//
//	GET /zero?n=N    N zero bytes, from one buffer in memory (Content-Length set)
//	GET /small       a 12-byte body: the connect-latency test's request
//	PUT|POST /sink   reads the body and throws it away, answers with its length
//
//	httpsrv -http 100.64.0.2:8000[,ADDR...]
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"strings"
)

// chunk is written again and again, so a download costs the server no allocation or copy.
var chunk = make([]byte, 1<<20)

func zero(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.URL.Query().Get("n"), 10, 64)
	if err != nil || n < 0 {
		http.Error(w, "n: a byte count", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	for n > 0 {
		part := chunk
		if int64(len(part)) > n {
			part = part[:n]
		}
		if _, err := w.Write(part); err != nil {
			return
		}
		n -= int64(len(part))
	}
}

// sink reads with a large buffer: io.Copy to io.Discard would read 8 KiB at a time, and the
// server's read size should not be what an upload measures.
func sink(w http.ResponseWriter, r *http.Request) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		k, err := r.Body.Read(buf)
		total += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	fmt.Fprintf(w, "%d\n", total)
}

func small(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Length", "12")
	io.WriteString(w, "hello world\n")
}

func main() {
	addrs := flag.String("http", ":8000", "listen addresses, comma separated")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("/zero", zero)
	mux.HandleFunc("/small", small)
	mux.HandleFunc("/sink", sink)
	list := strings.Split(*addrs, ",")
	errs := make(chan error, len(list))
	for _, a := range list {
		go func(a string) { errs <- http.ListenAndServe(a, mux) }(a)
	}
	log.Printf("httpsrv: http=%s", *addrs)
	log.Fatalf("httpsrv: %v", <-errs)
}
