// mlnode — one HashiCorp memberlist node (Debian's
// golang-github-hashicorp-memberlist-dev, DefaultLANConfig timings) for
// the interop tests: it joins a cluster and prints each membership event
// as a line "<unix ms> JOIN|LEAVE|UPDATE <name>" on stdout.  LEAVE is
// memberlist's NotifyLeave: the member was declared dead, or it left.
//
//	mlnode -name NAME -port PORT [-join HOST:PORT]
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

type events struct{ mu sync.Mutex }

func (e *events) print(kind string, n *memberlist.Node) {
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Printf("%d %s %s\n", time.Now().UnixNano()/1e6, kind, n.Name)
}

func (e *events) NotifyJoin(n *memberlist.Node)   { e.print("JOIN", n) }
func (e *events) NotifyLeave(n *memberlist.Node)  { e.print("LEAVE", n) }
func (e *events) NotifyUpdate(n *memberlist.Node) { e.print("UPDATE", n) }

func main() {
	name := flag.String("name", "", "node name")
	port := flag.Int("port", 0, "UDP and TCP port on 127.0.0.1")
	join := flag.String("join", "", "member to join, HOST:PORT")
	verbose := flag.Bool("v", false, "memberlist's own log on stderr")
	flag.Parse()
	if *name == "" || *port == 0 {
		fmt.Fprintln(os.Stderr, "usage: mlnode -name NAME -port PORT [-join HOST:PORT]")
		os.Exit(2)
	}
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = *name
	cfg.BindAddr = "127.0.0.1"
	cfg.BindPort = *port
	cfg.AdvertiseAddr = "127.0.0.1"
	cfg.AdvertisePort = *port
	cfg.Events = &events{}
	// Serf's delegate protocol range, which vigil advertises: memberlist
	// refuses a join across incompatible delegate versions.
	cfg.DelegateProtocolMin = 2
	cfg.DelegateProtocolMax = 5
	cfg.DelegateProtocolVersion = 4
	if !*verbose {
		cfg.LogOutput = io.Discard
	}
	ml, err := memberlist.Create(cfg)
	if err != nil {
		log.Fatalf("mlnode: %v", err)
	}
	if *join != "" {
		if _, err := ml.Join([]string{*join}); err != nil {
			log.Fatalf("mlnode: join %s: %v", *join, err)
		}
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	ml.Shutdown()
}
