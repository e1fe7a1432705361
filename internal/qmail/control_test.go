package qmail

import (
	"os"
	"path/filepath"
	"testing"
)

func TestControlDefaultHost(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string // "" for an error
	}{
		{"envnoathost first", map[string]string{"envnoathost": "ours.example\n", "me": "mx.ours.example\n"}, "ours.example"},
		{"me without envnoathost", map[string]string{"me": "mx.ours.example\n"}, "mx.ours.example"},
		{"empty envnoathost", map[string]string{"envnoathost": "\n", "me": " mx.ours.example \nx\n"}, "mx.ours.example"},
		{"neither", nil, ""},
		{"both empty", map[string]string{"envnoathost": "", "me": " \n"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, v := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(v), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Control{Dir: dir}.DefaultHost()
			if got != tc.want || (err != nil) != (tc.want == "") {
				t.Errorf("DefaultHost = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
