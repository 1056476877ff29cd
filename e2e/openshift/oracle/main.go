// Command scc-oracle admits pods the way an OpenShift API server does, with OpenShift's own SCC
// admission plugin, so that `seccomp-sentinel audit`'s simulation can be checked against it.
//
// It reads one JSON document on stdin:
//
//	{"sccs": [SecurityContextConstraints...], "namespaces": [Namespace...],
//	 "cases": [{"name": "...", "allow": ["restricted-v2"] or ["*"], "pod": Pod}]}
//
// and writes a JSON array, one entry per case, in order:
//
//	{"name": "...", "admitted": true, "scc": "restricted-v2", "pod": Pod}
//	{"name": "...", "admitted": false, "stage": "admit|validation|validate", "reason": "..."}
//
// Each pod goes through what the API server runs on create: decoding with the v1 defaults, the
// SCC plugin's Admit (mutating admission), the pod strategy's PrepareForCreate (the seccomp
// annotation/field sync) and Validate (Kubernetes' pod validation), then the SCC plugin's Validate
// (validating admission). "allow" names the SCCs the requesting user and the pod's service account
// may use ("use" on securitycontextconstraints); the users and groups listed in an SCC count too
// (the requester is an authenticated user, the service account is the pod's, "default" when it
// names none, as the ServiceAccount plugin sets). SCCs get the defaults their API server stores.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	kubeinformers "k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	coreapi "k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	"k8s.io/kubernetes/pkg/capabilities"
	podregistry "k8s.io/kubernetes/pkg/registry/core/pod"

	securityv1 "github.com/openshift/api/security/v1"
	"github.com/openshift/apiserver-library-go/pkg/securitycontextconstraints/sccadmission"
	"github.com/openshift/apiserver-library-go/pkg/securitycontextconstraints/sccdefaults"
	securityfake "github.com/openshift/client-go/security/clientset/versioned/fake"
	securityinformers "github.com/openshift/client-go/security/informers/externalversions"
)

type input struct {
	SCCs       []securityv1.SecurityContextConstraints `json:"sccs"`
	Namespaces []corev1.Namespace                      `json:"namespaces"`
	Cases      []testCase                              `json:"cases"`
}

type testCase struct {
	Name  string          `json:"name"`
	Allow []string        `json:"allow"`
	Pod   json.RawMessage `json:"pod"`
}

type result struct {
	Name     string          `json:"name"`
	Admitted bool            `json:"admitted"`
	SCC      string          `json:"scc,omitempty"`
	Pod      json.RawMessage `json:"pod,omitempty"`
	Stage    string          `json:"stage,omitempty"`
	Reason   string          `json:"reason,omitempty"`
}

// allowList answers "use" on the SCCs of the case being admitted, for any subject.
type allowList struct{ names map[string]bool }

func (a *allowList) Authorize(_ context.Context, attr authorizer.Attributes) (authorizer.Decision, string, error) {
	if attr.GetVerb() == "use" && attr.GetResource() == "securitycontextconstraints" &&
		attr.GetAPIGroup() == "security.openshift.io" && (a.names["*"] || a.names[attr.GetName()]) {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scc-oracle:", err)
		os.Exit(1)
	}
}

func run() error {
	// OpenShift's API servers run with --allow-privileged=true; pod validation refuses privileged
	// containers otherwise.
	capabilities.Initialize(capabilities.Capabilities{AllowPrivileged: true})
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		return fmt.Errorf("reading the input: %w", err)
	}

	// Created through the client, not given to the fake's constructor: the constructor guesses
	// the resource name from the kind ("securitycontextconstraintses") and the informer would
	// list nothing.
	securityClient := securityfake.NewSimpleClientset()
	for i := range in.SCCs {
		// Stored SCCs carry the defaults OpenShift's API server applies on create.
		sccdefaults.SetDefaults_SCC(&in.SCCs[i])
		if _, err := securityClient.SecurityV1().SecurityContextConstraints().Create(context.Background(), &in.SCCs[i], metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("SCC %s: %w", in.SCCs[i].Name, err)
		}
	}
	var nsObjects []runtime.Object
	for i := range in.Namespaces {
		nsObjects = append(nsObjects, &in.Namespaces[i])
	}
	securityInformers := securityinformers.NewSharedInformerFactory(securityClient, 0)
	kubeInformers := kubeinformers.NewSharedInformerFactory(kubefake.NewSimpleClientset(nsObjects...), 0)

	authz := &allowList{}
	plugin := sccadmission.NewConstraint()
	plugin.SetSecurityInformers(securityInformers.Security().V1().SecurityContextConstraints())
	plugin.SetExternalKubeInformerFactory(kubeInformers)
	plugin.SetAuthorizer(authz)
	if err := plugin.ValidateInitialization(); err != nil {
		return err
	}
	stop := make(chan struct{})
	defer close(stop)
	securityInformers.Start(stop)
	kubeInformers.Start(stop)
	securityInformers.WaitForCacheSync(stop)
	kubeInformers.WaitForCacheSync(stop)
	listed, err := securityInformers.Security().V1().SecurityContextConstraints().Lister().List(labels.Everything())
	if err != nil || len(listed) != len(in.SCCs) {
		return fmt.Errorf("the SCC informer holds %d of the %d SCCs given (%v)", len(listed), len(in.SCCs), err)
	}

	decoder := legacyscheme.Codecs.UniversalDecoder(coreapi.SchemeGroupVersion)
	encoder := legacyscheme.Codecs.LegacyCodec(corev1.SchemeGroupVersion)
	requester := &user.DefaultInfo{Name: "sentinel-oracle", Groups: []string{user.AllAuthenticated}}

	results := make([]result, 0, len(in.Cases))
	for _, c := range in.Cases {
		authz.names = map[string]bool{}
		for _, n := range c.Allow {
			authz.names[n] = true
		}
		results = append(results, admit(c, decoder, encoder, plugin, requester))
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", " ")
	return out.Encode(results)
}

type sccPlugin interface {
	admission.MutationInterface
	admission.ValidationInterface
}

func admit(c testCase, decoder runtime.Decoder, encoder runtime.Encoder, plugin sccPlugin, requester user.Info) result {
	refuse := func(stage string, err error) result {
		return result{Name: c.Name, Stage: stage, Reason: err.Error()}
	}
	obj, _, err := decoder.Decode(c.Pod, nil, nil)
	if err != nil {
		return refuse("decode", err)
	}
	pod, ok := obj.(*coreapi.Pod)
	if !ok {
		return refuse("decode", fmt.Errorf("not a pod: %T", obj))
	}
	// The ServiceAccount admission plugin runs before SCC admission and names the default account.
	if pod.Spec.ServiceAccountName == "" {
		pod.Spec.ServiceAccountName = "default"
	}
	ctx, cancel := context.WithTimeout(genericapirequest.WithNamespace(context.Background(), pod.Namespace), 30*time.Second)
	defer cancel()
	attributes := func() admission.Attributes {
		return admission.NewAttributesRecord(pod, nil, coreapi.Kind("Pod").WithVersion("v1"), pod.Namespace, pod.Name,
			coreapi.Resource("pods").WithVersion("v1"), "", admission.Create, &metav1.CreateOptions{}, false, requester)
	}
	if err := plugin.Admit(ctx, attributes(), nil); err != nil {
		return refuse("admit", err)
	}
	podregistry.Strategy.PrepareForCreate(ctx, pod)
	if errs := podregistry.Strategy.Validate(ctx, pod); len(errs) > 0 {
		return refuse("validation", errs.ToAggregate())
	}
	if err := plugin.Validate(ctx, attributes(), nil); err != nil {
		return refuse("validate", err)
	}
	encoded, err := runtime.Encode(encoder, pod)
	if err != nil {
		return refuse("encode", err)
	}
	return result{Name: c.Name, Admitted: true, SCC: pod.Annotations[securityv1.ValidatedSCCAnnotation], Pod: encoded}
}
