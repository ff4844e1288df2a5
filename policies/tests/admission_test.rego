package tests.admission

import rego.v1

import data.admission
import data.tests.fixtures

container := {
	"name": "api",
	"image": "registry.example.com/payments/api:1.4.2",
	"resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
	"readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
}

labels := {"portcullis.dev/team": "payments", "portcullis.dev/owner": "ana"}

pod(ns, spec_overrides) := {
	"apiVersion": "v1", "kind": "Pod",
	"metadata": {"name": "api", "namespace": ns, "labels": labels},
	"spec": object.union({"containers": [container]}, spec_overrides),
}

review(kind, ns, obj) := {
	"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
	"request": {"uid": "1", "kind": {"group": "", "version": "v1", "kind": kind}, "namespace": ns, "operation": "CREATE", "object": obj},
}

deny(r) := d if {
	d := admission.deny with input as r with data.platform as fixtures.platform
}

warn(r) := w if {
	w := admission.warn with input as r with data.platform as fixtures.platform
}

with_container(c) := pod("payments-dev", {"containers": [object.union(container, c)]})

test_compliant_pod_is_allowed_without_warnings if {
	deny(review("Pod", "payments-dev", pod("payments-dev", {}))) == set()
	warn(review("Pod", "payments-dev", pod("payments-dev", {}))) == set()
}

test_missing_and_unknown_labels if {
	unlabelled := json.patch(pod("payments-dev", {}), [{"op": "replace", "path": "/metadata/labels", "value": {}}])
	deny(review("Pod", "payments-dev", unlabelled)) == {"Pod api must carry the label portcullis.dev/team", "Pod api must carry the label portcullis.dev/owner"}
	stranger := json.patch(pod("payments-dev", {}), [{"op": "replace", "path": "/metadata/labels/portcullis.dev~1team", "value": "ghosts"}])
	deny(review("Pod", "payments-dev", stranger)) == {"Pod api names team \"ghosts\", which is not in the platform catalog"}
}

test_a_pod_named_by_its_controller_is_denied_like_any_other if {
	# ReplicaSet pods arrive with generateName and no name: every denial
	# still applies, named after the prefix.
	generated := json.patch(pod("payments-dev", {"hostNetwork": true}), [
		{"op": "remove", "path": "/metadata/name"},
		{"op": "add", "path": "/metadata/generateName", "value": "api-7d9f-"},
		{"op": "replace", "path": "/metadata/labels", "value": {}},
	])
	deny(review("Pod", "payments-dev", generated)) == {
		"Pod api-7d9f-* must carry the label portcullis.dev/team",
		"Pod api-7d9f-* must carry the label portcullis.dev/owner",
		"Pod api-7d9f-* must not set hostNetwork",
	}
	nameless := json.patch(generated, [{"op": "remove", "path": "/metadata/generateName"}])
	deny(review("Pod", "payments-dev", nameless))["Pod (unnamed) must not set hostNetwork"]
}

test_ephemeral_debug_containers_get_the_image_and_privilege_checks if {
	# kubectl debug --profile=sysadmin adds a privileged ephemeral container
	# to a running Pod (an UPDATE of pods/ephemeralcontainers). It may not
	# set resources, so only the image and privilege checks apply.
	debugger := {"name": "debugger", "image": "docker.io/library/busybox:latest", "securityContext": {"privileged": true}}
	debugged := pod("payments-dev", {"ephemeralContainers": [debugger]})
	r := json.patch(review("Pod", "payments-dev", debugged), [
		{"op": "replace", "path": "/request/operation", "value": "UPDATE"},
		{"op": "add", "path": "/request/subResource", "value": "ephemeralcontainers"},
	])
	deny(r) == {
		"container debugger must not run privileged",
		"container debugger: image docker.io/library/busybox:latest is not from an allowed registry [\"registry.example.com\"]",
		"container debugger: image docker.io/library/busybox:latest must name a tag other than latest, or a digest",
	}
}

test_capabilities_beyond_the_baseline_are_denied if {
	admin := with_container({"securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}}})
	deny(review("Pod", "payments-dev", admin)) == {"container api must not add the capability SYS_ADMIN"}
	bind := with_container({"securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}}})
	deny(review("Pod", "payments-dev", bind)) == set()
}

test_host_ports_are_denied if {
	exposed := with_container({"ports": [{"containerPort": 8080}, {"containerPort": 9090, "hostPort": 9090}]})
	deny(review("Pod", "payments-dev", exposed)) == {"container api must not bind the host port 9090"}
	inside := with_container({"ports": [{"containerPort": 8080, "hostPort": 0}]})
	deny(review("Pod", "payments-dev", inside)) == set()
}

test_unconfined_seccomp_and_apparmor_are_denied_at_either_level if {
	unconfined := with_container({"securityContext": {"seccompProfile": {"type": "Unconfined"}, "appArmorProfile": {"type": "Unconfined"}}})
	deny(review("Pod", "payments-dev", unconfined)) == {
		"container api must not set seccompProfile.type Unconfined",
		"container api must not set appArmorProfile.type Unconfined",
	}
	pod_level := pod("payments-dev", {"securityContext": {"seccompProfile": {"type": "Unconfined"}}})
	deny(review("Pod", "payments-dev", pod_level)) == {"Pod api must not set seccompProfile.type Unconfined"}
	confined := with_container({"securityContext": {
		"seccompProfile": {"type": "RuntimeDefault"},
		"appArmorProfile": {"type": "Localhost", "localhostProfile": "k8s-api"},
		"seLinuxOptions": {"type": "container_t", "level": "s0:c123,c456"},
		"procMount": "Default",
		"windowsOptions": {"hostProcess": false},
	}})
	deny(review("Pod", "payments-dev", confined)) == set()
}

test_selinux_may_choose_a_container_type_only if {
	spc := with_container({"securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "system_u", "role": "system_r"}}})
	deny(review("Pod", "payments-dev", spc)) == {
		"container api must not set seLinuxOptions.type spc_t",
		"container api must not set seLinuxOptions.user system_u",
		"container api must not set seLinuxOptions.role system_r",
	}
	pod_level := pod("payments-dev", {"securityContext": {"seLinuxOptions": {"type": "unconfined_t"}}})
	deny(review("Pod", "payments-dev", pod_level)) == {"Pod api must not set seLinuxOptions.type unconfined_t"}
}

test_unmasked_proc_and_windows_host_processes_are_denied if {
	unmasked := with_container({"securityContext": {"procMount": "Unmasked"}})
	deny(review("Pod", "payments-dev", unmasked)) == {"container api must not set procMount Unmasked"}
	host := pod("payments-dev", {"securityContext": {"windowsOptions": {"hostProcess": true}}})
	deny(review("Pod", "payments-dev", host)) == {"Pod api must not set windowsOptions.hostProcess true"}
}

test_only_pod_scoped_sysctls_are_allowed if {
	tuned := pod("payments-dev", {"securityContext": {"sysctls": [
		{"name": "net.ipv4.tcp_syncookies", "value": "1"},
		{"name": "kernel.msgmax", "value": "65536"},
	]}})
	deny(review("Pod", "payments-dev", tuned)) == {"Pod api must not set the sysctl kernel.msgmax"}
}

test_apparmor_annotations_must_confine if {
	key := "container.apparmor.security.beta.kubernetes.io/api"
	unconfined := json.patch(pod("payments-dev", {}), [{"op": "add", "path": "/metadata/annotations", "value": {key: "unconfined"}}])
	deny(review("Pod", "payments-dev", unconfined)) == {"container api: annotation container.apparmor.security.beta.kubernetes.io/api must be runtime/default or localhost/<profile>, not unconfined"}
	some profile in ["runtime/default", "localhost/k8s-api"]
	confined := json.patch(pod("payments-dev", {}), [{"op": "add", "path": "/metadata/annotations", "value": {key: profile}}])
	deny(review("Pod", "payments-dev", confined)) == set()
}

test_workload_templates_get_the_baseline_checks if {
	template := {
		"metadata": {"labels": labels, "annotations": {"container.apparmor.security.beta.kubernetes.io/api": "unconfined"}},
		"spec": {"containers": [object.union(container, {"securityContext": {"seccompProfile": {"type": "Unconfined"}}})]},
	}
	deployment := {"kind": "Deployment", "metadata": {"name": "api", "labels": labels}, "spec": {"template": template}}
	deny(review("Deployment", "payments-dev", deployment)) == {
		"container api must not set seccompProfile.type Unconfined",
		"container api: annotation container.apparmor.security.beta.kubernetes.io/api must be runtime/default or localhost/<profile>, not unconfined",
	}
	cron := {"kind": "CronJob", "metadata": {"name": "nightly", "labels": labels}, "spec": {"jobTemplate": {"spec": {"template": template}}}}
	count(deny(review("CronJob", "payments-dev", cron))) == 2
}

test_resources_are_required if {
	c := object.union(object.remove(container, ["resources"]), {"resources": {"requests": {"cpu": "100m"}}})
	d := deny(review("Pod", "payments-dev", pod("payments-dev", {"containers": [c]})))
	d == {
		"container api must set resources.requests.memory",
		"container api must set resources.limits.cpu",
		"container api must set resources.limits.memory",
	}
}

test_limits_within_class_caps if {
	big := with_container({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "3", "memory": "8Gi"}}})
	deny(review("Pod", "payments-dev", big)) == {
		"container api: cpu limit 3 exceeds the dev cap of 2",
		"container api: memory limit 8Gi exceeds the dev cap of 4294967296 bytes",
	}
	prod := json.patch(big, [{"op": "replace", "path": "/metadata/namespace", "value": "payments-prod"}])
	pinned := json.patch(prod, [{"op": "replace", "path": "/spec/containers/0/image", "value": "registry.example.com/payments/api@sha256:abc"}])
	deny(review("Pod", "payments-prod", pinned)) == set()
}

test_images_from_allowed_registries_only if {
	deny(review("Pod", "payments-dev", with_container({"image": "docker.io/library/nginx:1.25"}))) == {"container api: image docker.io/library/nginx:1.25 is not from an allowed registry [\"registry.example.com\"]"}
	deny(review("Pod", "payments-dev", with_container({"image": "registry.example.com.evil.io/x:1"})))
}

test_latest_and_untagged_images_are_refused if {
	deny(review("Pod", "payments-dev", with_container({"image": "registry.example.com/payments/api:latest"}))) == {"container api: image registry.example.com/payments/api:latest must name a tag other than latest, or a digest"}
	count(deny(review("Pod", "payments-dev", with_container({"image": "registry.example.com/payments/api"})))) == 1
	deny(review("Pod", "payments-dev", with_container({"image": "registry.example.com/payments/api@sha256:0123"}))) == set()
}

test_privileged_and_host_access_are_refused if {
	deny(review("Pod", "payments-dev", with_container({"securityContext": {"privileged": true}}))) == {"container api must not run privileged"}
	deny(review("Pod", "payments-dev", pod("payments-dev", {"hostNetwork": true, "hostPID": true}))) == {"Pod api must not set hostNetwork", "Pod api must not set hostPID"}
	deny(review("Pod", "payments-dev", pod("payments-dev", {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}))) == {"volume root must not mount a hostPath"}
}

test_init_containers_are_checked if {
	init := object.union(container, {"name": "migrate", "image": "registry.example.com/payments/migrate:latest"})
	deny(review("Pod", "payments-dev", pod("payments-dev", {"initContainers": [init]}))) == {"container migrate: image registry.example.com/payments/migrate:latest must name a tag other than latest, or a digest"}
}

test_workloads_are_checked_through_their_pod_template if {
	bad := object.union(container, {"image": "registry.example.com/payments/api:latest"})
	template := {"metadata": {"labels": labels}, "spec": {"containers": [bad]}}
	deployment := {"kind": "Deployment", "metadata": {"name": "api", "namespace": "payments-dev", "labels": labels}, "spec": {"template": template}}
	count(deny(review("Deployment", "payments-dev", deployment))) == 1
	cronjob := {"kind": "CronJob", "metadata": {"name": "job", "namespace": "payments-dev", "labels": labels}, "spec": {"jobTemplate": {"spec": {"template": template}}}}
	count(deny(review("CronJob", "payments-dev", cronjob))) == 1
}

test_warnings if {
	no_probe := with_container({"readinessProbe": null})
	unprobed := json.patch(no_probe, [{"op": "remove", "path": "/spec/containers/0/readinessProbe"}])
	warn(review("Pod", "payments-dev", unprobed)) == {"container api has no readinessProbe"}
	prod := json.patch(pod("payments-prod", {}), [{"op": "replace", "path": "/metadata/namespace", "value": "payments-prod"}])
	warn(review("Pod", "payments-prod", prod)) == {"container api: pin prod images by digest"}
}

test_deletes_and_exempt_namespaces_are_not_checked if {
	bad := with_container({"image": "docker.io/x:latest"})
	r := review("Pod", "payments-dev", bad)
	deny(json.patch(r, [{"op": "replace", "path": "/request/operation", "value": "DELETE"}])) == set()
	deny(review("Pod", "kube-system", bad)) == set()
}

test_feature_namespaces_need_a_ttl if {
	ns := {"kind": "Namespace", "metadata": {"name": "payments-feature-x", "labels": object.union(labels, {"portcullis.dev/class": "feature"})}}
	deny(review("Namespace", "", ns)) == {"feature namespace payments-feature-x must carry the portcullis.dev/ttl annotation"}
	with_ttl := json.patch(ns, [{"op": "add", "path": "/metadata/annotations", "value": {"portcullis.dev/ttl": "168h"}}])
	deny(review("Namespace", "", with_ttl)) == set()
}

test_network_objects_use_the_network_guardrails if {
	svc := {"kind": "Service", "metadata": {"name": "api", "namespace": "payments-dev", "labels": labels}, "spec": {"type": "LoadBalancer"}}
	deny(review("Service", "payments-dev", svc)) == {"a Service of type LoadBalancer is not allowed in dev environments; use ClusterIP behind the ingress controller"}
	np := {"kind": "NetworkPolicy", "metadata": {"name": "open", "namespace": "payments-prod"}, "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}}
	count(deny(review("NetworkPolicy", "payments-prod", np))) == 1
}

test_unknown_namespace_uses_the_class_label if {
	big := with_container({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "3", "memory": "1Gi"}}})
	labelled := json.patch(big, [{"op": "add", "path": "/metadata/labels/portcullis.dev~1class", "value": "dev"}, {"op": "replace", "path": "/metadata/namespace", "value": "scratch"}])
	deny(review("Pod", "scratch", labelled)) == {"container api: cpu limit 3 exceeds the dev cap of 2"}
}

test_wildcard_ingress_host_outside_prod if {
	ing := {"kind": "Ingress", "metadata": {"name": "web", "namespace": "payments-dev", "labels": labels}, "spec": {"rules": [{"host": "*.example.com"}]}}
	deny(review("Ingress", "payments-dev", ing)) == {"Ingress web: wildcard host *.example.com is only allowed in prod"}
	prod := json.patch(ing, [{"op": "replace", "path": "/metadata/namespace", "value": "payments-prod"}])
	deny(review("Ingress", "payments-prod", prod)) == set()
}
