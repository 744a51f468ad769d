// hello is Stageflow's demo service: GET / greets, GET /healthz answers "ok".
// `hello -healthcheck` probes a running instance (the image has no shell or curl).
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func port() string {
	if p := os.Getenv("PORT"); p != "" {
		return p
	}
	return "8080"
}

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", os.Getenv("HOSTNAME"))
	})
	return mux
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-healthcheck" {
		resp, err := http.Get("http://127.0.0.1:" + port() + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			os.Exit(1)
		}
		return
	}
	log.Printf("listening on :%s", port())
	log.Fatal(http.ListenAndServe(":"+port(), handler()))
}
