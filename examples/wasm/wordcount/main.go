// Command wordcount is an example module for Grey's wasm task kind: it
// counts the words of its standard input (the task's input) and prints
// {"words":N}, which becomes the task's result.
//
// Build it and push it:
//
//	GOOS=wasip1 GOARCH=wasm go build -o wordcount.wasm ./examples/wasm/wordcount
//	greyctl module push wordcount.wasm
package main

import (
	"bufio"
	"fmt"
	"os"
)

func main() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(bufio.ScanWords)
	n := 0
	for sc.Scan() {
		n++
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
	fmt.Printf("{\"words\":%d}\n", n)
}
