// Command etcd is the upstream etcd server main, built from the pinned
// go.etcd.io/etcd/server/v3 module (the root go.etcd.io/etcd/v3 module that
// normally holds this main is not published for every 3.6 patch release).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
