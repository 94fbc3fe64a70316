// Command kubelet is a test stand-in for a real kubelet's traffic to the API
// server, for Earthworm's Go TLS uprobe tests. Its binary is named kubelet
// because the kernel's comm comes from the executable's name.
//
// Like a kubelet it uses client-go over ONE HTTP/2 connection with TLS, with
// protobuf as content type, and on that connection, concurrently:
//   - renews the Lease kube-node-lease/<node> with Update every -interval
//     (the nodelease controller's way), printing one JSON line per renewal
//     with its own latency measured around the Update call;
//   - watches pods and ConfigMaps in -namespace (watch streams);
//   - patches the ConfigMap <node>-status every -patch-interval.
//
// With -wait it connects (Lease, ConfigMap and watches set up) and then
// waits for a line on stdin before the first renewal, so a probe can attach
// to a process whose connection is already open.
//
// Output, one JSON object per line on stdout: {"event":"dial",...} for each
// TCP connection dialled, {"event":"ready",...}, {"event":"renew",...} per
// renewal, {"event":"watch",...} per watch event, {"event":"error",...}.
// Times are CLOCK_MONOTONIC nanoseconds, the clock of bpf_ktime_get_ns.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

var out = struct {
	sync.Mutex
	enc *json.Encoder
}{enc: json.NewEncoder(os.Stdout)}

func say(v map[string]any) {
	out.Lock()
	defer out.Unlock()
	_ = out.enc.Encode(v)
}

func mono() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

func fail(what string, err error) {
	say(map[string]any{"event": "error", "what": what, "error": err.Error()})
	os.Exit(1)
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "admin kubeconfig of the API server")
	node := flag.String("node", "gokubelet", "node name: the Lease kube-node-lease/<node>")
	namespace := flag.String("namespace", "default", "namespace of the watched pods and the patched ConfigMap")
	interval := flag.Duration("interval", time.Second, "time between Lease renewals")
	patchInterval := flag.Duration("patch-interval", 700*time.Millisecond, "time between ConfigMap patches")
	renewals := flag.Int("renewals", 0, "stop after this many renewals (0: never)")
	wait := flag.Bool("wait", false, "after connecting, wait for a line on stdin before renewing")
	flag.Parse()
	if *kubeconfig == "" {
		fmt.Fprintln(os.Stderr, "kubelet: -kubeconfig is required")
		os.Exit(2)
	}

	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fail("kubeconfig", err)
	}
	// The kubelet's settings: protobuf, and no client-side throttling at this rate.
	config.ContentType = "application/vnd.kubernetes.protobuf"
	config.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	config.QPS = 50
	config.Burst = 100
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	config.Dial = func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, address)
		if err == nil {
			say(map[string]any{"event": "dial", "local": c.LocalAddr().String(), "remote": c.RemoteAddr().String()})
		}
		return c, err
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		fail("client", err)
	}
	ctx := context.Background()

	leases := client.CoordinationV1().Leases("kube-node-lease")
	lease, err := leases.Get(ctx, *node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		seconds := int32(40)
		now := metav1.NewMicroTime(time.Now())
		lease, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: *node, Namespace: "kube-node-lease"},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       node,
				LeaseDurationSeconds: &seconds,
				RenewTime:            &now,
			},
		}, metav1.CreateOptions{})
	}
	if err != nil {
		fail("lease", err)
	}

	configMaps := client.CoreV1().ConfigMaps(*namespace)
	cmName := *node + "-status"
	if _, err := configMaps.Get(ctx, cmName, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		_, err = configMaps.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: cmName},
			Data:       map[string]string{"beat": "0"},
		}, metav1.CreateOptions{})
		if err != nil {
			fail("configmap", err)
		}
	} else if err != nil {
		fail("configmap", err)
	}

	for _, kind := range []string{"pods", "configmaps"} {
		go watchLoop(ctx, client, *namespace, kind)
	}
	say(map[string]any{"event": "ready", "pid": os.Getpid(), "resourceVersion": lease.ResourceVersion})
	if *wait {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	}

	go func() {
		for i := 1; ; i++ {
			time.Sleep(*patchInterval)
			patch := fmt.Sprintf(`{"data":{"beat":"%d"}}`, i)
			_, err := configMaps.Patch(ctx, cmName, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
			if err != nil {
				say(map[string]any{"event": "error", "what": "patch", "error": err.Error()})
			}
		}
	}()

	for n := 1; *renewals == 0 || n <= *renewals; n++ {
		time.Sleep(*interval)
		now := metav1.NewMicroTime(time.Now())
		lease.Spec.RenewTime = &now
		sent := lease.ResourceVersion
		start := mono()
		updated, err := leases.Update(ctx, lease, metav1.UpdateOptions{})
		end := mono()
		line := map[string]any{
			"event": "renew", "seq": n, "startNs": start, "endNs": end,
			"latencyNs": end - start, "sentResourceVersion": sent,
		}
		if err != nil {
			line["error"] = err.Error()
			if fresh, gerr := leases.Get(ctx, *node, metav1.GetOptions{}); gerr == nil {
				lease = fresh
			}
		} else {
			lease = updated
			line["resourceVersion"] = updated.ResourceVersion
		}
		say(line)
	}
}

// watchLoop watches one kind in the namespace, again after each end.
func watchLoop(ctx context.Context, client *kubernetes.Clientset, namespace, kind string) {
	for {
		var err error
		count := 0
		switch kind {
		case "pods":
			w, werr := client.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{})
			err = werr
			if err == nil {
				for range w.ResultChan() {
					count++
				}
			}
		case "configmaps":
			w, werr := client.CoreV1().ConfigMaps(namespace).Watch(ctx, metav1.ListOptions{})
			err = werr
			if err == nil {
				for range w.ResultChan() {
					count++
				}
			}
		}
		if err != nil {
			say(map[string]any{"event": "error", "what": "watch " + kind, "error": err.Error()})
			time.Sleep(time.Second)
			continue
		}
		say(map[string]any{"event": "watch", "kind": kind, "events": count})
	}
}
