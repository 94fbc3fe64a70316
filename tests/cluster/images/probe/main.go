// Command probe is the program of the test image that Earthworm's real test
// node runs (tests/cluster/node.sh builds it into an OCI image):
//
//	probe serve PORT   answer HTTP GETs on PORT with "earthworm-probe HOSTNAME"
//	probe whoami       call the API server as an in-cluster client: through
//	                   $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT,
//	                   trusting only the ServiceAccount CA, authenticated by
//	                   the ServiceAccount token; print one JSON line
//
// It uses only the standard library and builds static (CGO_ENABLED=0), so the
// image needs no base layer.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

func main() {
	// As a pod's PID 1 the process gets no default signal actions: exit on
	// SIGTERM ourselves so pods stop without waiting for SIGKILL.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		os.Exit(0)
	}()

	if len(os.Args) == 3 && os.Args[1] == "serve" {
		serve(os.Args[2])
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "whoami" {
		if err := whoami(); err != nil {
			fmt.Fprintf(os.Stderr, "probe whoami: %v\n", err)
			os.Exit(1)
		}
		return
	}
	fmt.Fprintln(os.Stderr, "usage: probe serve PORT | probe whoami")
	os.Exit(2)
}

func serve(port string) {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "earthworm-probe %s\n", host)
	})
	fmt.Printf("serving on :%s\n", port)
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Fprintf(os.Stderr, "probe serve: %v\n", err)
		os.Exit(1)
	}
}

// result is what whoami prints.
type result struct {
	Server     string `json:"server"`
	RemoteAddr string `json:"remoteAddr"`
	GitVersion string `json:"gitVersion"`
	Username   string `json:"username"`
}

func whoami() error {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return fmt.Errorf("KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is not set")
	}
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("no certificate in %s/ca.crt", saDir)
	}
	out := result{Server: net.JoinHostPort(host, port)}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client := &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			// Verifies the serving certificate against the ServiceAccount CA
			// and the Service IP (an IP SAN), as client-go's in-cluster config does.
			TLSClientConfig: &tls.Config{RootCAs: pool},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dialer.DialContext(ctx, network, addr)
				if err == nil {
					out.RemoteAddr = c.RemoteAddr().String()
				}
				return c, err
			},
		},
	}
	call := func(method, path string, body []byte, into any) error {
		req, err := http.NewRequest(method, "https://"+out.Server+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+string(bytes.TrimSpace(token)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
		}
		return json.Unmarshal(data, into)
	}

	var version struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := call("GET", "/version", nil, &version); err != nil {
		return err
	}
	out.GitVersion = version.GitVersion

	// A SelfSubjectReview answers with the identity the token authenticated
	// as: proof that the token, not anonymous access, was accepted.
	var review struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	body := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	if err := call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body, &review); err != nil {
		return err
	}
	out.Username = review.Status.UserInfo.Username
	return json.NewEncoder(os.Stdout).Encode(out)
}
