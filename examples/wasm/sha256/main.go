// Command sha256 is an example module for Grey's wasm task kind: it hashes
// its standard input (the task's input) and prints {"sha256":"<hex>"},
// which becomes the task's result.
//
// Build it and push it:
//
//	GOOS=wasip1 GOARCH=wasm go build -o sha256.wasm ./examples/wasm/sha256
//	greyctl module push sha256.wasm
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

func main() {
	h := sha256.New()
	if _, err := io.Copy(h, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "sha256:", err)
		os.Exit(1)
	}
	fmt.Printf("{\"sha256\":%q}\n", hex.EncodeToString(h.Sum(nil)))
}
