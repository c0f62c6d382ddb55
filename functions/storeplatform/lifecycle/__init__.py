"""A store's life on the cluster: provision (create-store), deprovision (delete-store), the
runner Job and namespace steps they share, and the cluster read behind list-stores.

Every function takes the Kubernetes verbs (storeplatform.kube.Kube, or a fake in the unit
tests) and is safe to repeat: Knative delivers at least once.
"""
