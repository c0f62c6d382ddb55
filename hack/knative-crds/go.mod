// Pins the Knative releases whose CRDs the tests install (fetch.sh); nothing is built here.
// knative.dev/serving and knative.dev/eventing v0.50.0 = Knative v1.23.0
// (the Go modules count v0.N, releases 1.(N-27)). Keep in step with hack/up.sh.
module storeplatform.local/hack/knative-crds

go 1.24

require (
	knative.dev/eventing v0.50.0
	knative.dev/serving v0.50.0
)
