package api

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
)

// unknownFieldPath finds where in the JSON document raw, decoded into a
// value of type t, the unknown field name stands, and returns its path
// ("quota.max_cpu", "constraints.labelz", "tasks[2].bogus"); encoding/json
// names only the key. It returns name when it cannot tell.
func unknownFieldPath(raw []byte, t reflect.Type, name string) string {
	var doc any
	if json.Unmarshal(raw, &doc) != nil {
		return name
	}
	if p, ok := findUnknown(doc, t, name, ""); ok {
		return p
	}
	return name
}

func findUnknown(v any, t reflect.Type, name, path string) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		switch t.Kind() {
		case reflect.Struct:
			fields := jsonFields(t)
			for k, sub := range x {
				ft, ok := fields[k]
				if !ok {
					ft, ok = foldField(fields, k)
				}
				if !ok {
					if k == name {
						return join(k), true
					}
					continue
				}
				if p, ok := findUnknown(sub, ft, name, join(k)); ok {
					return p, true
				}
			}
		case reflect.Map:
			for k, sub := range x {
				if p, ok := findUnknown(sub, t.Elem(), name, join(k)); ok {
					return p, true
				}
			}
		}
	case []any:
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			for i, sub := range x {
				if p, ok := findUnknown(sub, t.Elem(), name, path+"["+strconv.Itoa(i)+"]"); ok {
					return p, true
				}
			}
		}
	}
	return "", false
}

// jsonFields maps a struct's JSON keys to their types, embedded structs'
// fields included (as encoding/json flattens them).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		key, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && key == "" {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if key == "" {
			key = f.Name
		}
		out[key] = f.Type
	}
	return out
}

// foldField matches a key case-insensitively, as encoding/json does.
func foldField(fields map[string]reflect.Type, k string) (reflect.Type, bool) {
	for name, t := range fields {
		if strings.EqualFold(name, k) {
			return t, true
		}
	}
	return nil, false
}
