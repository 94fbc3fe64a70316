// Command h2echo drives crypto/tls with chosen call boundaries, for tests
// of Earthworm's Go TLS uprobes: a client and a server in this process talk
// TLS over 127.0.0.1. The client writes a byte stream (HTTP/2 frames, from
// a file) in chunks of the sizes -w; the server reads it with buffers of
// -r bytes, writes it back in chunks of -W, and the client reads that with
// buffers of -R. Each size list repeats until the stream is done.
//
// -skip n leaves the first n bytes out of the echo (the client preface,
// which only a client sends).
//
// It prints "ready <pid>" once both ends of the connection are set up, then
// waits for a line on stdin before sending, prints "done <n>" after
// checking that the echo matches the n bytes sent, and closes both ends at
// the next line or the end of stdin.
package main

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"
)

func sizes(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "h2echo: bad size %q\n", f)
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}

func selfSigned() tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// write sends data in chunks whose sizes cycle through split.
func write(c *tls.Conn, data []byte, split []int) {
	for i, off := 0, 0; off < len(data); i++ {
		n := min(split[i%len(split)], len(data)-off)
		if _, err := c.Write(data[off : off+n]); err != nil {
			panic(err)
		}
		off += n
	}
}

// read reads total bytes with buffers whose sizes cycle through split.
func read(c *tls.Conn, total int, split []int) []byte {
	var out []byte
	for i := 0; len(out) < total; i++ {
		buf := make([]byte, min(split[i%len(split)], total-len(out)))
		n, err := c.Read(buf)
		if err != nil {
			panic(err)
		}
		out = append(out, buf[:n]...)
	}
	return out
}

func main() {
	in := flag.String("in", "", "file with the byte stream to send")
	w := flag.String("w", "4096", "client write sizes")
	r := flag.String("r", "4096", "server read buffer sizes")
	W := flag.String("W", "4096", "server write sizes")
	R := flag.String("R", "4096", "client read buffer sizes")
	skip := flag.Int("skip", 0, "bytes at the start of the stream not echoed")
	flag.Parse()
	data, err := os.ReadFile(*in)
	if err != nil {
		panic(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{selfSigned()}, MinVersion: tls.VersionTLS13}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		panic(err)
	}
	accepted := make(chan *tls.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			panic(err)
		}
		tc := c.(*tls.Conn)
		if err := tc.Handshake(); err != nil {
			panic(err)
		}
		accepted <- tc
	}()
	client, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		panic(err)
	}
	server := <-accepted
	fmt.Printf("ready %d\n", os.Getpid())
	stdin := bufio.NewReader(os.Stdin)
	_, _ = stdin.ReadString('\n')

	done := make(chan []byte)
	go func() {
		got := read(server, len(data), sizes(*r))
		write(server, got[*skip:], sizes(*W))
		done <- got
	}()
	write(client, data, sizes(*w))
	echo := read(client, len(data)-*skip, sizes(*R))
	if got := <-done; !bytes.Equal(got, data) || !bytes.Equal(echo, data[*skip:]) {
		fmt.Fprintln(os.Stderr, "h2echo: the echo differs from the stream sent")
		os.Exit(1)
	}
	fmt.Printf("done %d\n", len(data))
	_, _ = stdin.ReadString('\n')
	_ = client.Close()
	_ = server.Close()
}
