/*
Copyright 2026 The wechat-operator Authors.
SPDX-License-Identifier: Apache-2.0
*/

// Command cluster-images packs static binaries into OCI images without a daemon and without a
// registry, with github.com/google/go-containerregistry, and writes each as a `docker save`
// tarball that `ctr images import` loads into a node's containerd (make images).
//
// The images match the Dockerfile's final stages (distroless static, nonroot): a base layer
// with /etc/passwd and /etc/group naming nonroot (65532), CA certificates for
// api.weixin.qq.com, Go's time zone database, /tmp and /home/nonroot; a layer with the binary
// at /<name>; USER 65532:65532 and ENTRYPOINT ["/<name>"].
//
//	cluster-images --out DIR NAME=REF=BINARY...
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	nonroot = 65532
	// The pause image runs as 65535, as Kubernetes' does.
	pauseUser = 65535
)

func main() {
	out := flag.String("out", "bin/images", "directory the image tarballs (<NAME>.tar) are written to")
	base := flag.String("base", "static", `base layer: "static" (users, CA certificates, time zones) or "none"`)
	caFile := flag.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the static base")
	// This tool runs with `go run` on the machine that builds the images, where GOROOT is real.
	zoneinfo := flag.String("zoneinfo", filepath.Join(runtime.GOROOT(), "lib", "time", "zoneinfo.zip"), "Go's time zone database copied into the static base") //nolint:staticcheck // see above
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: cluster-images [flags] NAME=REF=BINARY...\n\n"+
			"Packs each static BINARY as image REF (entrypoint /NAME) into OUT/NAME.tar for `ctr images import`.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fail(err)
	}
	var baseLayer v1.Layer
	if *base == "static" {
		var err error
		if baseLayer, err = staticBase(*caFile, *zoneinfo); err != nil {
			fail(err)
		}
	}
	for _, arg := range flag.Args() {
		parts := strings.SplitN(arg, "=", 3)
		if len(parts) != 3 {
			fail(fmt.Errorf("%q: want NAME=REF=BINARY", arg))
		}
		if err := build(*out, parts[0], parts[1], parts[2], baseLayer); err != nil {
			fail(fmt.Errorf("%s: %w", parts[0], err))
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "cluster-images:", err)
	os.Exit(1)
}

func build(outDir, imgName, ref, binary string, base v1.Layer) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	var files tarFiles
	files.file("/"+imgName, bin, 0o755, 0)
	binLayer, err := files.layer()
	if err != nil {
		return err
	}
	layers := []v1.Layer{binLayer}
	user := fmt.Sprintf("%d:%d", nonroot, nonroot)
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	if base != nil {
		layers = []v1.Layer{base, binLayer}
		env = append(env, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "ZONEINFO=/usr/share/zoneinfo.zip")
	} else {
		user = fmt.Sprintf("%d:%d", pauseUser, pauseUser)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cfg.Config.User = user
	cfg.Config.Entrypoint = []string{"/" + imgName}
	cfg.Config.Env = env
	cfg.Config.WorkingDir = "/"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	out := filepath.Join(outDir, imgName+".tar")
	if err := tarball.WriteToFile(out+".tmp", tag, img); err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Printf("%s %s %s\n", out, tag.String(), digest)
	return os.Rename(out+".tmp", out)
}

// staticBase is the distroless-static-like base layer.
func staticBase(caFile, zoneinfo string) (v1.Layer, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA certificates: %w (install ca-certificates)", err)
	}
	tz, err := os.ReadFile(zoneinfo)
	if err != nil {
		return nil, fmt.Errorf("time zones: %w", err)
	}
	var f tarFiles
	f.dir("/etc", 0o755, 0)
	f.file("/etc/passwd", []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"), 0o644, 0)
	f.file("/etc/group", []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"), 0o644, 0)
	f.file("/etc/nsswitch.conf", []byte("hosts: files dns\n"), 0o644, 0)
	f.dir("/etc/ssl", 0o755, 0)
	f.dir("/etc/ssl/certs", 0o755, 0)
	f.file("/etc/ssl/certs/ca-certificates.crt", ca, 0o644, 0)
	f.dir("/usr", 0o755, 0)
	f.dir("/usr/share", 0o755, 0)
	f.file("/usr/share/zoneinfo.zip", tz, 0o644, 0)
	f.dir("/tmp", 0o1777, 0)
	f.dir("/home", 0o755, 0)
	f.dir("/home/nonroot", 0o700, nonroot)
	return f.layer()
}

// tarFiles builds one layer's tar in memory, with fixed times so that images are reproducible.
type tarFiles struct {
	buf bytes.Buffer
	tw  *tar.Writer
}

func (t *tarFiles) writer() *tar.Writer {
	if t.tw == nil {
		t.tw = tar.NewWriter(&t.buf)
	}
	return t.tw
}

func (t *tarFiles) dir(path string, mode int64, owner int) {
	_ = t.writer().WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(path, "/") + "/",
		Mode: mode, Uid: owner, Gid: owner, ModTime: time.Unix(0, 0)})
}

func (t *tarFiles) file(path string, data []byte, mode int64, owner int) {
	_ = t.writer().WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(path, "/"),
		Mode: mode, Uid: owner, Gid: owner, Size: int64(len(data)), ModTime: time.Unix(0, 0)})
	_, _ = t.writer().Write(data)
}

func (t *tarFiles) layer() (v1.Layer, error) {
	if err := t.writer().Close(); err != nil {
		return nil, err
	}
	data := t.buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}
