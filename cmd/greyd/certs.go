package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/grey-distributed/grey/certs"
)

const certsUsage = `usage:
  greyd certs init  --dir DIR
      make a development CA in DIR (ca.crt, and ca.key with mode 0600)
  greyd certs issue --dir DIR --name NODE_ID --role server|worker [--host h1,h2,...]
      sign a node certificate with the CA in DIR (NODE_ID.crt, NODE_ID.key);
      hosts are the DNS names and IPs the node is reached at
      (default localhost,127.0.0.1,::1)
`

// runCerts is `greyd certs init|issue`: a development CA and node
// certificates for mutual TLS (docs/AUTH.md).
func runCerts(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "init" && args[0] != "issue") {
		fmt.Fprint(stderr, certsUsage)
		return 2
	}
	fs := flag.NewFlagSet("greyd certs "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory of the CA (required)")
	var name, role, hosts *string
	if args[0] == "issue" {
		name = fs.String("name", "", "node id: the certificate's name and identity (required)")
		role = fs.String("role", "", "server or worker (required)")
		hosts = fs.String("host", "", "comma-separated DNS names and IP addresses of the node")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "greyd certs %s: unexpected arguments %q\n", args[0], fs.Args())
		return 2
	}
	if *dir == "" {
		fmt.Fprintf(stderr, "greyd certs %s: --dir is required\n", args[0])
		return 2
	}
	if args[0] == "init" {
		p, err := certs.InitCA(*dir)
		if err != nil {
			fmt.Fprintf(stderr, "greyd certs init: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "CA certificate: %s (tls.ca_file of every node)\nCA key:         %s (keep it off the nodes)\n", p, filepath.Join(*dir, certs.CAKeyFile))
		return 0
	}
	if *name == "" || *role == "" {
		fmt.Fprintln(stderr, "greyd certs issue: --name and --role are required")
		return 2
	}
	out, err := certs.Issue(*dir, certs.IssueRequest{Name: *name, Role: certs.Role(*role), Hosts: splitList(*hosts)})
	if err != nil {
		fmt.Fprintf(stderr, "greyd certs issue: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "certificate: %s\nkey:         %s\nidentity:    %s\n", out.CertFile, out.KeyFile, out.Identity)
	return 0
}
