package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/crmslack/crmslack/libs/crmauth"
	"github.com/crmslack/crmslack/libs/devpki"
	"github.com/crmslack/crmslack/libs/identity"
	"github.com/crmslack/crmslack/libs/rpc"
	// Registers every service crmctl can call.
	_ "github.com/crmslack/crmslack/proto/gen/go/crmslack/delivery/v1"
	_ "github.com/crmslack/crmslack/proto/gen/go/crmslack/query/v1"
	_ "github.com/crmslack/crmslack/proto/gen/go/crmslack/reminders/v1"
	_ "github.com/crmslack/crmslack/proto/gen/go/crmslack/sharing/v1"
	_ "github.com/crmslack/crmslack/proto/gen/go/crmslack/signals/v1"
	_ "github.com/crmslack/crmslack/proto/gen/go/crmslack/teams/v1"
	_ "github.com/crmslack/crmslack/proto/gen/go/crmslack/workflows/v1"
)

// defaultAddr is where each service's gRPC API listens under `make run`;
// <SERVICE>_ADDR overrides it.
var defaultAddr = map[string]string{
	"teams":     "127.0.0.1:9101",
	"delivery":  "127.0.0.1:9102",
	"query":     "127.0.0.1:9103",
	"sharing":   "127.0.0.1:9104",
	"workflows": "127.0.0.1:9105",
	"reminders": "127.0.0.1:9106",
	"signals":   "127.0.0.1:9107",
}

func callCmd(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("call", flag.ContinueOnError)
	addr := fs.String("addr", "", "host:port of the service (default: <SERVICE>_ADDR or the local port)")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of the call")
	pkiDir := fs.String("pki", defaultPKI(), "the development CA and keys `make run` made (LOCAL_DATA_DIR/pki)")
	as := fs.String("as", identity.CRM, "the identity to call as: crm, or a service's name to debug a call it makes")
	user := fs.String("user", "", "as crm: the acting CRM user's email (default: the request's caller or sharer, else the org's admin connector)")
	role := fs.String("role", "", "as crm with -user: admin or user (default admin)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return errors.New("want METHOD [JSON]")
	}
	md, err := findMethod(fs.Arg(0))
	if err != nil {
		return err
	}
	body := []byte("{}")
	if fs.NArg() == 2 {
		body = []byte(fs.Arg(1))
	} else if f, ok := stdin.(*os.File); !ok || !isTerminal(f) {
		if body, err = io.ReadAll(stdin); err != nil {
			return err
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			body = []byte("{}")
		}
	}
	req, err := protoregistry.GlobalTypes.FindMessageByName(md.Input().FullName())
	if err != nil {
		return err
	}
	resp, err := protoregistry.GlobalTypes.FindMessageByName(md.Output().FullName())
	if err != nil {
		return err
	}
	in, out := req.New().Interface(), resp.New().Interface()
	if err := protojson.Unmarshal(body, in); err != nil {
		return fmt.Errorf("request is not a valid %s: %w", md.Input().FullName(), err)
	}
	target := *addr
	if target == "" {
		target = addrFor(md.Parent().(protoreflect.ServiceDescriptor))
	}
	dir, err := openPKI(*pkiDir)
	if err != nil {
		return err
	}
	files, err := dir.Trust(*as)
	if err != nil {
		return err
	}
	id, err := files.Identity()
	if err != nil {
		return err
	}
	var callOpts []grpc.CallOption
	if *as == identity.CRM && *user != "" {
		tok, err := devpki.NewCRMSigner(dir).Token(userClaims(in, *user, *role))
		if err != nil {
			return err
		}
		callOpts = append(callOpts, grpc.PerRPCCredentials(crmauth.Bearer(tok)))
	}
	var dialOpts []grpc.DialOption
	if *as == identity.CRM {
		dialOpts = append(dialOpts, grpc.WithChainUnaryInterceptor(devpki.NewCRMSigner(dir).Interceptor()))
	}
	full := "/" + string(md.Parent().FullName()) + "/" + string(md.Name())
	cc, err := rpc.Dial(target, rpc.ServerOf(full), id, dialOpts...)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	if err := cc.Invoke(ctx, full, in, out, callOpts...); err != nil {
		return err
	}
	b, err := answerJSON(out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, string(b))
	return err
}

// answerJSON prints an answer with its false, zero and empty fields, so
// "enabled": false is said rather than left out; unset messages stay out.
func answerJSON(m proto.Message) ([]byte, error) {
	return protojson.MarshalOptions{Multiline: true, EmitDefaultValues: true}.Marshal(m)
}

// findMethod accepts "pkg.Service/Method", "Service/Method" or
// "Service.Method".
func findMethod(name string) (protoreflect.MethodDescriptor, error) {
	name = strings.TrimPrefix(name, "/")
	name = strings.Replace(name, "/", ".", 1)
	var found []protoreflect.MethodDescriptor
	for _, md := range allMethods() {
		full := string(md.FullName())
		if full == name || strings.HasSuffix(full, "."+name) {
			found = append(found, md)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return nil, fmt.Errorf("no method %q (see crmctl methods)", name)
	}
	return nil, fmt.Errorf("%q is ambiguous; give the package too", name)
}

func allMethods() []protoreflect.MethodDescriptor {
	var out []protoreflect.MethodDescriptor
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		if !strings.HasPrefix(string(fd.Package()), "crmslack.") {
			return true
		}
		for i := 0; i < fd.Services().Len(); i++ {
			sd := fd.Services().Get(i)
			for j := 0; j < sd.Methods().Len(); j++ {
				out = append(out, sd.Methods().Get(j))
			}
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].FullName() < out[j].FullName() })
	return out
}

// addrFor maps crmslack.<service>.v1 to <SERVICE>_ADDR or its local default.
func addrFor(sd protoreflect.ServiceDescriptor) string {
	svc := rpc.ServerOf("/" + string(sd.FullName()) + "/")
	if v := os.Getenv(strings.ToUpper(svc) + "_ADDR"); v != "" {
		return v
	}
	return defaultAddr[svc]
}

func methodsCmd(w io.Writer) error {
	for _, md := range allMethods() {
		fmt.Fprintf(w, "%s/%s(%s) returns %s\n", md.Parent().FullName(), md.Name(), md.Input().Name(), md.Output().Name())
	}
	return nil
}

func typesCmd(w io.Writer) error {
	for _, t := range eventTypes() {
		fmt.Fprintln(w, t)
	}
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// defaultPKI is where the local runner keeps the development CA.
func defaultPKI() string {
	dir := os.Getenv("LOCAL_DATA_DIR")
	if dir == "" {
		dir = ".local"
	}
	return filepath.Join(dir, "pki")
}

// openPKI opens the runner's development CA, never a new one: a CA the
// running stack does not trust would only fail at the handshake.
func openPKI(dir string) (*devpki.Dir, error) {
	if _, err := os.Stat(filepath.Join(dir, "ca.crt")); err != nil {
		return nil, fmt.Errorf("no development CA in %s (run make run once, or pass -pki): %w", dir, err)
	}
	return devpki.Open(dir)
}

// userClaims is the credential of the CRM user email for req's org.
func userClaims(req proto.Message, email, role string) crmauth.Claims {
	c := devpki.ClaimsFor(req)
	c.Email, c.Name = email, ""
	c.Subject, _, _ = strings.Cut(email, "@")
	c.Role = crmauth.RoleAdmin
	if role != "" {
		c.Role = role
	}
	return c
}
