/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// krewManifest is the part of krew's Plugin manifest that krew needs to install.
type krewManifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		ShortDescription string `json:"shortDescription"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
			Files  []struct {
				From string `json:"from"`
				To   string `json:"to"`
			} `json:"files"`
		} `json:"platforms"`
	} `json:"spec"`
}

// make krew-archive for this machine's platform: the archive holds the plugin and its
// completion executable where the manifest's files: take them from, the manifest's sha256 is
// the archive's, and the plugin in it runs.
func TestKrewArchive(t *testing.T) {
	out := t.TempDir()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command(filepath.Join("..", "..", "hack", "krew-archive.sh"))
	cmd.Env = append(os.Environ(), "VERSION=v1.2.3", "KREW_PLATFORMS="+platform, "KREW_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/krew-archive.sh: %v\n%s", err, b)
	}
	data, err := os.ReadFile(filepath.Join(out, "wechat.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var m krewManifest
	if err := utilyaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "wechat" ||
		m.Spec.Version != "v1.2.3" || m.Spec.ShortDescription == "" || len(m.Spec.Platforms) == 0 {
		t.Fatalf("manifest: %+v", m)
	}
	archiveName := "kubectl-wechat_" + runtime.GOOS + "_" + runtime.GOARCH + ".tar.gz"
	archive, err := os.ReadFile(filepath.Join(out, archiveName))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(archive)
	built := 0
	for _, p := range m.Spec.Platforms {
		l := p.Selector.MatchLabels
		if !strings.HasSuffix(p.URI, "/v1.2.3/kubectl-wechat_"+l["os"]+"_"+l["arch"]+".tar.gz") || p.Bin != "kubectl-wechat" {
			t.Errorf("platform %v: uri %s bin %s", l, p.URI, p.Bin)
		}
		var from []string
		for _, f := range p.Files {
			from = append(from, f.From)
		}
		if !slices.Equal(from, []string{"kubectl-wechat", "kubectl_complete-wechat"}) {
			t.Errorf("platform %v: files %v", l, from)
		}
		if l["os"]+"/"+l["arch"] == platform {
			built++
			if p.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("manifest sha256 %s, the archive's is %x", p.SHA256, sum)
			}
		}
	}
	if built != 1 {
		t.Fatalf("the manifest has %d entries for %s", built, platform)
	}

	// The archive: exactly the two executables, at its root.
	zr, err := gzip.NewReader(strings.NewReader(string(archive)))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	dir := t.TempDir()
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Mode&0o111 == 0 {
			t.Errorf("%s in the archive is not executable (mode %o)", h.Name, h.Mode)
		}
		f, err := os.OpenFile(filepath.Join(dir, filepath.Base(h.Name)), os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if !slices.Equal(names, []string{"kubectl-wechat", "kubectl_complete-wechat"}) {
		t.Fatalf("archive holds %v", names)
	}
	// As krew installs it: both on PATH; kubectl's completion call answers.
	c := exec.Command(filepath.Join(dir, "kubectl_complete-wechat"), "sta")
	c.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	got, err := c.CombinedOutput()
	if err != nil || !strings.HasPrefix(string(got), "status\t") || !strings.HasSuffix(string(got), "\n:4\n") {
		t.Fatalf("the archive's kubectl_complete-wechat sta: %v %q", err, got)
	}
}
