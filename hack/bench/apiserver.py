"""What the API server says of its own load (GET /metrics with the admin credentials): the
requests it served, and, through one FlowSchema per ServiceAccount the bench adds (same
priority level as the default one, so nothing changes but the counting), whose they were."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass

from kubernetes import client
from kubernetes.client.exceptions import ApiException

PRIORITY_LEVEL = "workload-low"  # where the default "service-accounts" schema sends them
PREFIX = "bench-"
TIMEOUT = 30
_SAMPLE = re.compile(r'^(\w+)\{([^}]*)\} ([0-9.e+-]+)$')


OTHERS = "others"  # every other ServiceAccount of the namespace: the per-store runners


def flow_schema(namespace: str, service_account: str) -> dict:
    """A FlowSchema for one ServiceAccount ("*": the namespace's others, matched after)."""
    name = OTHERS if service_account == "*" else service_account
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
        "metadata": {"name": PREFIX + name},
        "spec": {"priorityLevelConfiguration": {"name": PRIORITY_LEVEL},
                 "matchingPrecedence": 600 if service_account == "*" else 500,
                 "distinguisherMethod": {"type": "ByUser"},
                 "rules": [{"subjects": [{"kind": "ServiceAccount", "serviceAccount": {
                     "name": service_account, "namespace": namespace}}],
                     "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                        "clusterScope": True, "namespaces": ["*"]}],
                     "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}}


def count_by_service_account(api: client.ApiClient, namespace: str,
                             service_accounts: Iterable[str]) -> None:
    """Add the FlowSchemas (kept when there already), and one for the namespace's other
    ServiceAccounts (count them with OTHERS)."""
    flow = client.FlowcontrolApiserverV1Api(api)
    for name in [*service_accounts, "*"]:
        try:
            flow.create_flow_schema(flow_schema(namespace, name), _request_timeout=TIMEOUT)
        except ApiException as err:
            if err.status != 409:
                raise


@dataclass(frozen=True)
class Sample:
    at: float
    total: float  # every request the API server has finished (apiserver_request_total)
    by_schema: dict[str, float]  # requests dispatched per bench FlowSchema (its SA)
    rejected: float  # requests API Priority and Fairness turned away (429)

    def calls(self, since: Sample, service_account: str) -> float:
        key = PREFIX + service_account
        return self.by_schema.get(key, 0.0) - since.by_schema.get(key, 0.0)

    def rate(self, since: Sample) -> float:
        return (self.total - since.total) / max(1e-9, self.at - since.at)


def sample(api: client.ApiClient) -> Sample:
    text = api.call_api("/metrics", "GET", auth_settings=["BearerToken"], response_type="str",
                        _return_http_data_only=True, _preload_content=False,
                        _request_timeout=TIMEOUT).data.decode()
    total = rejected = 0.0
    by_schema: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        name, labels, value = match.groups()
        if name == "apiserver_request_total":
            total += float(value)
        elif name == "apiserver_flowcontrol_dispatched_requests_total":
            schema = re.search(r'flow_schema="([^"]+)"', labels)
            if schema and schema.group(1).startswith(PREFIX):
                by_schema[schema.group(1)] = by_schema.get(schema.group(1), 0.0) + float(value)
        elif name == "apiserver_flowcontrol_rejected_requests_total":
            rejected += float(value)
    return Sample(time.monotonic(), total, by_schema, rejected)
