// Command kstatus prints what Flux's status library (sigs.k8s.io/cli-utils
// pkg/kstatus, the code behind a Flux Kustomization's `wait: true` and
// health checks) makes of Kubernetes objects.
//
// It reads one object or a List as JSON on stdin (`kubectl get -o json`)
// and writes one JSON line per object:
//
//	{"kind":"Agent","namespace":"ns","name":"a","status":"Failed","message":"..."}
//
// The operator's tests run it on objects from a real control plane, so the
// status conventions are checked by the library Flux uses, not by a copy of
// its rules.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type verdict struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	Message   string `json:"message"`
}

func main() {
	if err := run(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(in io.Reader, out io.Writer) error {
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	var obj unstructured.Unstructured
	if err := obj.UnmarshalJSON(data); err != nil {
		return fmt.Errorf("reading an object or List from stdin: %w", err)
	}
	items := []unstructured.Unstructured{obj}
	if obj.IsList() {
		list, err := obj.ToList()
		if err != nil {
			return err
		}
		items = list.Items
	}
	encoder := json.NewEncoder(out)
	for i := range items {
		result, err := status.Compute(&items[i])
		if err != nil {
			return fmt.Errorf("%s %s/%s: %w", items[i].GetKind(), items[i].GetNamespace(), items[i].GetName(), err)
		}
		if err := encoder.Encode(verdict{
			Kind:      items[i].GetKind(),
			Namespace: items[i].GetNamespace(),
			Name:      items[i].GetName(),
			Status:    result.Status.String(),
			Message:   result.Message,
		}); err != nil {
			return err
		}
	}
	return nil
}
