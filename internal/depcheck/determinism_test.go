package depcheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Calls and imports that make a replica's state depend on when or where it
// applies a command (DESIGN §4: the API layer stamps times and ids before
// raft.Apply; the FSM and the state store are pure functions of the log).
var (
	forbiddenCalls   = map[string][]string{"time": {"Now", "Since", "Until", "Tick", "After", "NewTimer", "NewTicker", "AfterFunc"}}
	forbiddenImports = []string{"math/rand", "math/rand/v2", "crypto/rand"}
)

// deterministicFiles are the files the rule covers: the FSM and every
// non-test file of package state.
func deterministicFiles(t *testing.T) []string {
	root := repoRoot(t)
	files := []string{filepath.Join(root, "cluster", "fsm.go")}
	state, err := filepath.Glob(filepath.Join(root, "state", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range state {
		if !strings.HasSuffix(f, "_test.go") {
			files = append(files, f)
		}
	}
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	return files
}

// violations lists the forbidden calls and imports in one Go source file.
func violations(fset *token.FileSet, f *ast.File) []string {
	var out []string
	names := map[string]string{} // local name -> import path
	for _, imp := range f.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		for _, bad := range forbiddenImports {
			if p == bad {
				out = append(out, fset.Position(imp.Pos()).String()+": imports "+p)
			}
		}
		name := filepath.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		names[name] = p
	}
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		id, ok := sel.X.(*ast.Ident)
		if !ok || id.Obj != nil { // a local variable, not a package
			return true
		}
		for _, fn := range forbiddenCalls[names[id.Name]] {
			if sel.Sel.Name == fn {
				out = append(out, fset.Position(sel.Pos()).String()+": uses "+names[id.Name]+"."+fn)
			}
		}
		return true
	})
	return out
}

// TestStateMachineIsDeterministic fails if the FSM or the state store
// reads the clock or draws random numbers.
func TestStateMachineIsDeterministic(t *testing.T) {
	fset := token.NewFileSet()
	for _, path := range deterministicFiles(t) {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range violations(fset, f) {
			t.Error(v)
		}
	}
}

// TestViolationsFound checks the checker on code that breaks the rule.
func TestViolationsFound(t *testing.T) {
	src := `package state
import (
	"time"
	mr "math/rand"
	"crypto/rand"
)
func f() {
	_ = time.Now()
	_ = time.Since(time.Time{})
	_ = mr.Int()
	var b [4]byte
	rand.Read(b[:])
	_ = time.Duration(5) // allowed: a type, not the clock
}
`
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "x.go", src, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	got := violations(fset, f)
	want := []string{"imports math/rand", "imports crypto/rand", "uses time.Now", "uses time.Since"}
	if len(got) != len(want) {
		t.Fatalf("violations = %q, want %d: %q", got, len(want), want)
	}
	for i, w := range want {
		if !strings.HasSuffix(got[i], w) {
			t.Errorf("violation %d = %q, want ... %s", i, got[i], w)
		}
	}
}
