// A resolver client that does what Go programs do: it asks package net, which reads
// /etc/resolv.conf and talks DNS itself (the pure Go resolver) or calls the C library's
// getaddrinfo (the cgo resolver), as GODEBUG=netdns=go or =cgo chooses. Built by the tests
// (tests/it/consul_clients.rs) from the standard library alone, so each resolver's own rules
// decide what an answer means.
//
//	lookup-go host NAME  net.LookupHost(NAME): one address a line, exit 0;
//	                     on failure "error: <err>" and exit 2
//	lookup-go srv NAME   net.LookupSRV("", "", NAME), then net.LookupHost on each target,
//	                     as RFC 2782's usage rules have a client do: "srv PRIORITY WEIGHT
//	                     PORT TARGET" for each record, then "addr TARGET ADDRESS" for each
//	                     address of its target, exit 0; on failure as above
package main

import (
	"fmt"
	"net"
	"os"
)

func host(name string) int {
	addrs, err := net.LookupHost(name)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 2
	}
	for _, addr := range addrs {
		fmt.Println(addr)
	}
	return 0
}

func srv(name string) int {
	_, records, err := net.LookupSRV("", "", name)
	if err != nil {
		fmt.Printf("error: %v\n", err)
		return 2
	}
	for _, record := range records {
		fmt.Printf("srv %d %d %d %s\n", record.Priority, record.Weight, record.Port, record.Target)
	}
	for _, record := range records {
		addrs, err := net.LookupHost(record.Target)
		if err != nil {
			fmt.Printf("error: %s: %v\n", record.Target, err)
			return 2
		}
		for _, addr := range addrs {
			fmt.Printf("addr %s %s\n", record.Target, addr)
		}
	}
	return 0
}

func main() {
	if len(os.Args) == 3 && os.Args[1] == "host" {
		os.Exit(host(os.Args[2]))
	}
	if len(os.Args) == 3 && os.Args[1] == "srv" {
		os.Exit(srv(os.Args[2]))
	}
	fmt.Fprintln(os.Stderr, "usage: lookup-go host NAME | lookup-go srv NAME")
	os.Exit(64)
}
