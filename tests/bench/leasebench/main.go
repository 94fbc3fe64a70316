// Command leasebench is the Go side of Earthworm's scale benchmarks
// (tests/bench/scale_informer.ts). It has two modes:
//
//	leasebench informer -kubeconfig FILE [-protobuf] [-sample-suffix 0]
//
// runs a minimal client-go SharedInformer on every Lease of the cluster, the
// yardstick for Earthworm's leader: its handlers count adds, updates and
// deletes, and for Leases whose name ends in -sample-suffix record when each
// new renewTime was seen (wall clock, nanoseconds).
//
//	leasebench renew -kubeconfig FILE -namespace NS -count 1000 -every 2s
//
// creates -count Leases and renews each every -every (with up to 10 %
// jitter, like a controller's leader election) with Update, and records when
// each renewal of a sampled Lease was answered.
//
// All read commands from stdin, one per line, and answer on stdout with one
// JSON object per line: "stats" (counters and the time), "dump" (the
// recorded samples, then {"done":true}). They exit at the end of stdin.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// sample is one recorded renewal: the Lease, its renewTime in microseconds
// and when it was seen (informer) or answered (renewer), in nanoseconds.
type sample struct {
	ID      string `json:"id"`
	RenewUs int64  `json:"renewUs"`
	AtNs    int64  `json:"atNs"`
}

type recorder struct {
	mu      sync.Mutex
	samples []sample
}

func (r *recorder) add(s sample) {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

var out = json.NewEncoder(os.Stdout)
var outMu sync.Mutex

func say(v any) {
	outMu.Lock()
	defer outMu.Unlock()
	_ = out.Encode(v)
}

func config(kubeconfig string, protobuf bool) *rest.Config {
	c, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		fmt.Fprintln(os.Stderr, "leasebench:", err)
		os.Exit(2)
	}
	if protobuf {
		c.ContentType = "application/vnd.kubernetes.protobuf"
		c.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	}
	// No client-side throttling: the renewer writes hundreds a second.
	c.QPS = -1
	return c
}

// commands answers "stats" and "dump" on stdin until it ends.
func commands(stats func() map[string]any, rec *recorder) {
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch strings.TrimSpace(in.Text()) {
		case "stats":
			s := stats()
			s["atNs"] = time.Now().UnixNano()
			say(s)
		case "dump":
			rec.mu.Lock()
			all := rec.samples
			rec.samples = nil
			rec.mu.Unlock()
			for _, s := range all {
				say(s)
			}
			say(map[string]any{"done": true, "samples": len(all)})
		}
	}
}

func renewUs(l *coordinationv1.Lease) int64 {
	if l.Spec.RenewTime == nil {
		return 0
	}
	return l.Spec.RenewTime.UnixMicro()
}

func informer(kubeconfig string, protobuf bool, suffix string) {
	client := kubernetes.NewForConfigOrDie(config(kubeconfig, protobuf))
	var adds, updates, deletes atomic.Int64
	rec := &recorder{}
	factory := informers.NewSharedInformerFactory(client, 0)
	inf := factory.Coordination().V1().Leases().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { adds.Add(1) },
		UpdateFunc: func(oldObj, newObj any) {
			updates.Add(1)
			l := newObj.(*coordinationv1.Lease)
			if !strings.HasSuffix(l.Name, suffix) {
				return
			}
			if r := renewUs(l); r != renewUs(oldObj.(*coordinationv1.Lease)) {
				rec.add(sample{l.Namespace + "/" + l.Name, r, time.Now().UnixNano()})
			}
		},
		DeleteFunc: func(any) { deletes.Add(1) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "leasebench:", err)
		os.Exit(1)
	}
	ctx := context.Background()
	factory.Start(ctx.Done())
	synced := cache.WaitForCacheSync(ctx.Done(), inf.HasSynced)
	say(map[string]any{"event": "synced", "ok": synced, "pid": os.Getpid()})
	commands(func() map[string]any {
		return map[string]any{
			"adds": adds.Load(), "updates": updates.Load(), "deletes": deletes.Load(),
			"cached": len(inf.GetStore().ListKeys()),
		}
	}, rec)
}

func renew(kubeconfig, namespace, prefix string, count int, every time.Duration, suffix string) {
	client := kubernetes.NewForConfigOrDie(config(kubeconfig, false))
	leases := client.CoordinationV1().Leases(namespace)
	ctx := context.Background()
	var renewals, failures atomic.Int64
	rec := &recorder{}
	seconds := int32(max(1, int(every.Seconds()*15/2)))
	var ready sync.WaitGroup
	for i := range count {
		ready.Add(1)
		go func() {
			name := fmt.Sprintf("%s-%d", prefix, i)
			holder := name + "-holder"
			now := metav1.NewMicroTime(time.Now())
			lease, err := leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: coordinationv1.LeaseSpec{
					HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &now,
				},
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				lease, err = leases.Get(ctx, name, metav1.GetOptions{})
			}
			ready.Done()
			if err != nil {
				fmt.Fprintln(os.Stderr, "leasebench:", name, err)
				return
			}
			sampled := strings.HasSuffix(name, suffix)
			time.Sleep(time.Duration(rand.Int63n(int64(every))))
			for {
				now := metav1.NewMicroTime(time.Now())
				lease.Spec.RenewTime = &now
				updated, err := leases.Update(ctx, lease, metav1.UpdateOptions{})
				at := time.Now().UnixNano()
				if err != nil {
					failures.Add(1)
					if fresh, gerr := leases.Get(ctx, name, metav1.GetOptions{}); gerr == nil {
						lease = fresh
					}
				} else {
					renewals.Add(1)
					lease = updated
					if sampled {
						rec.add(sample{namespace + "/" + name, now.UnixMicro(), at})
					}
				}
				time.Sleep(every + time.Duration(rand.Int63n(int64(every)/10+1)))
			}
		}()
	}
	ready.Wait()
	say(map[string]any{"event": "ready", "leases": count, "pid": os.Getpid()})
	commands(func() map[string]any {
		return map[string]any{"renewals": renewals.Load(), "failures": failures.Load()}
	}, rec)
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: leasebench informer|renew [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the API server")
	suffix := fs.String("sample-suffix", "0", "record renewals of Leases whose name ends with this")
	protobuf := fs.Bool("protobuf", false, "informer: read Leases as protobuf instead of JSON")
	namespace := fs.String("namespace", "default", "renew: namespace of the Leases")
	prefix := fs.String("prefix", "ctl", "renew: Lease name prefix")
	count := fs.Int("count", 1000, "renew: number of Leases")
	every := fs.Duration("every", 2*time.Second, "renew: renewal interval of each Lease")
	_ = fs.Parse(os.Args[2:])
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "leasebench: -kubeconfig is required")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "informer":
		informer(*kubeconfig, *protobuf, *suffix)
	case "renew":
		renew(*kubeconfig, *namespace, *prefix, *count, *every, *suffix)
	default:
		fmt.Fprintln(os.Stderr, "leasebench: unknown mode", os.Args[1])
		os.Exit(2)
	}
}
