# The admission contract: what the validating webhook evaluates for each
# AdmissionReview (admission.k8s.io/v1) it receives as input.
#
# deny contains message  -> the request is refused with every message
# warn contains message  -> the request is allowed with warnings
#
# Covers Pods and pod-owning workloads, Services, Ingresses, NetworkPolicies
# and Namespaces. Data: data.platform.admission (registries, label keys,
# per-class container caps, exempt namespaces), data.platform.namespaces,
# data.platform.teams, and the network guardrails of data.network.
package admission

import rego.v1

# Both sets in one document, for callers that want a single evaluation.
decision := {"allowed": count(deny) == 0, "deny": deny, "warn": warn}

settings := data.platform.admission

request := input.request

obj := request.object

kind := request.kind.kind

namespace := request.namespace

# The object's name, for messages. A Pod created by a controller (a
# ReplicaSet's, a Job's) has only metadata.generateName when it is
# admitted, and a denial whose message needed metadata.name would vanish
# with it.
default object_name := "(unnamed)"

object_name := obj.metadata.name if is_string(obj.metadata.name)

object_name := concat("", [obj.metadata.generateName, "*"]) if {
	# Not `not is_string(obj.metadata.name)`: in OPA that is undefined, not
	# true, when the name is missing (as it is for generated names).
	not is_string(object.get(obj, ["metadata", "name"], null))
	is_string(obj.metadata.generateName)
}

default labels := {}

labels := obj.metadata.labels if is_object(obj.metadata.labels)

default annotations := {}

annotations := obj.metadata.annotations if is_object(obj.metadata.annotations)

# Writes are checked; deletes, connects and exempt namespaces are not.
checked if {
	request.operation in {"CREATE", "UPDATE"}
	not exempt
}

exempt if namespace in settings.exempt_namespaces

# The environment class: the namespace's, from data; else its label.
class := data.platform.namespaces[namespace].class

class := labels[settings.labels.class] if not data.platform.namespaces[namespace]

team := data.platform.namespaces[namespace].team

team := labels[settings.labels.team] if not data.platform.namespaces[namespace]

# --- ownership labels

labelled_kinds := {"Pod", "Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Service", "Ingress", "Namespace"}

deny contains msg if {
	checked
	labelled_kinds[kind]
	some key in [settings.labels.team, settings.labels.owner]
	not labels[key]
	msg := sprintf("%s %s must carry the label %s", [kind, object_name, key])
}

deny contains msg if {
	checked
	labelled_kinds[kind]
	value := labels[settings.labels.team]
	not data.platform.teams[value]
	msg := sprintf("%s %s names team %q, which is not in the platform catalog", [kind, object_name, value])
}

# --- pods and the workloads that own them

pod_spec := obj.spec if kind == "Pod"

pod_spec := obj.spec.template.spec if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}

pod_spec := obj.spec.jobTemplate.spec.template.spec if kind == "CronJob"

containers := array.concat(list_field(pod_spec, "initContainers"), list_field(pod_spec, "containers"))

# Ephemeral containers (kubectl debug, through the pods/ephemeralcontainers
# subresource) run inside the pod but may not set resources or probes: they
# get the image and privilege checks only.
all_containers := array.concat(containers, list_field(pod_spec, "ephemeralContainers"))

# A list field of an object: [] when it is missing, null or not a list, so
# that no check raises an error on a malformed object.
list_field(parent, field) := parent[field] if is_array(parent[field])

else := []

deny contains msg if {
	checked
	some c in containers
	some kind_of in ["requests", "limits"]
	some resource in ["cpu", "memory"]
	not c.resources[kind_of][resource]
	msg := sprintf("container %s must set resources.%s.%s", [c.name, kind_of, resource])
}

deny contains msg if {
	checked
	caps := settings.container_caps[class]
	some c in containers
	cpu := units.parse(c.resources.limits.cpu)
	cpu > caps.cpu
	msg := sprintf("container %s: cpu limit %v exceeds the %s cap of %v", [c.name, c.resources.limits.cpu, class, caps.cpu])
}

deny contains msg if {
	checked
	caps := settings.container_caps[class]
	some c in containers
	memory := units.parse_bytes(c.resources.limits.memory)
	memory > caps.memory_bytes
	msg := sprintf("container %s: memory limit %v exceeds the %s cap of %v bytes", [c.name, c.resources.limits.memory, class, caps.memory_bytes])
}

deny contains msg if {
	checked
	some c in all_containers
	not allowed_registry(c.image)
	msg := sprintf("container %s: image %s is not from an allowed registry %v", [c.name, c.image, settings.allowed_registries])
}

allowed_registry(image) if {
	is_string(image)
	some registry in settings.allowed_registries
	startswith(image, concat("", [registry, "/"]))
}

deny contains msg if {
	checked
	some c in all_containers
	not pinned(c.image)
	msg := sprintf("container %s: image %s must name a tag other than latest, or a digest", [c.name, c.image])
}

# Pinned: a digest, or a tag (after the last "/") that is not "latest".
pinned(image) if {
	is_string(image)
	contains(image, "@sha256:")
}

pinned(image) if {
	is_string(image)
	not contains(image, "@")
	parts := split(image, "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	not endswith(last, ":latest")
}

deny contains msg if {
	checked
	some c in all_containers
	c.securityContext.privileged == true
	msg := sprintf("container %s must not run privileged", [c.name])
}

# Adding a capability outside the Pod Security Standards' baseline set
# (SYS_ADMIN, NET_ADMIN, SYS_PTRACE, ...) is privilege by another name.
baseline_capabilities := {
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
	"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

deny contains msg if {
	checked
	some c in all_containers
	some capability in list_field(object.get(c, ["securityContext", "capabilities"], {}), "add")
	not capability in baseline_capabilities
	msg := sprintf("container %s must not add the capability %v", [c.name, capability])
}

# A host port exposes the node's network like hostNetwork does, one port
# at a time.
deny contains msg if {
	checked
	some c in all_containers
	some port in list_field(c, "ports")
	port.hostPort != 0
	msg := sprintf("container %s must not bind the host port %v", [c.name, port.hostPort])
}

# --- the rest of the Pod Security Standards' baseline

deny contains msg if {
	checked
	some msg in baseline_violations
}

# The pod's own security context and each container's, with the words that
# name it in a message. Most baseline controls may be set at either level.
# (Each element is bound in the body: an element that could be undefined in
# the head would make regorus's interpreter drop the others.)
security_contexts contains sc if {
	context := pod_spec.securityContext
	is_object(context)
	sc := {"owner": sprintf("%s %s", [kind, object_name]), "context": context}
}

security_contexts contains sc if {
	some c in all_containers
	context := c.securityContext
	is_object(context)
	sc := {"owner": sprintf("container %s", [c.name]), "context": context}
}

# The values a security context may hold, by field; a field that is not set
# passes. Unconfined seccomp or AppArmor, an unmasked /proc, a Windows host
# process (which runs on the node, outside any container), an SELinux type
# other than a container's, or any SELinux user or role is refused.
context_allowed_values := {
	"seccompProfile.type": {"path": ["seccompProfile", "type"], "allowed": {"RuntimeDefault", "Localhost"}},
	"appArmorProfile.type": {"path": ["appArmorProfile", "type"], "allowed": {"RuntimeDefault", "Localhost"}},
	"procMount": {"path": ["procMount"], "allowed": {"Default"}},
	"windowsOptions.hostProcess": {"path": ["windowsOptions", "hostProcess"], "allowed": {false}},
	"seLinuxOptions.type": {
		"path": ["seLinuxOptions", "type"],
		"allowed": {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"},
	},
	"seLinuxOptions.user": {"path": ["seLinuxOptions", "user"], "allowed": {""}},
	"seLinuxOptions.role": {"path": ["seLinuxOptions", "role"], "allowed": {""}},
}

baseline_violations contains msg if {
	some sc in security_contexts
	some field, rule in context_allowed_values
	value := object.get(sc.context, rule.path, null)
	value != null
	not value in rule.allowed
	msg := sprintf("%s must not set %s %v", [sc.owner, field, value])
}

# Sysctls the kubelet namespaces per pod; any other reaches the node.
safe_sysctls := {
	"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_local_reserved_ports",
	"net.ipv4.ip_unprivileged_port_start", "net.ipv4.ping_group_range", "net.ipv4.tcp_syncookies",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
}

baseline_violations contains msg if {
	some sc in security_contexts
	some sysctl in list_field(sc.context, "sysctls")
	not sysctl.name in safe_sysctls
	msg := sprintf("%s must not set the sysctl %v", [sc.owner, sysctl.name])
}

# AppArmor through the per-container annotation that older clusters still
# honour, on the Pod or on the workload's pod template.
default pod_annotations := {}

pod_annotations := annotations if kind == "Pod"

pod_annotations := obj.spec.template.metadata.annotations if {
	kind in {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
	is_object(obj.spec.template.metadata.annotations)
}

pod_annotations := obj.spec.jobTemplate.spec.template.metadata.annotations if {
	kind == "CronJob"
	is_object(obj.spec.jobTemplate.spec.template.metadata.annotations)
}

baseline_violations contains msg if {
	some c in all_containers
	key := concat("", ["container.apparmor.security.beta.kubernetes.io/", c.name])
	profile := pod_annotations[key]
	is_string(profile)
	not confined_apparmor_profile(profile)
	msg := sprintf("container %s: annotation %s must be runtime/default or localhost/<profile>, not %s", [c.name, key, profile])
}

confined_apparmor_profile(profile) if profile == "runtime/default"

confined_apparmor_profile(profile) if startswith(profile, "localhost/")

deny contains msg if {
	checked
	some field in ["hostNetwork", "hostPID", "hostIPC"]
	pod_spec[field] == true
	msg := sprintf("%s %s must not set %s", [kind, object_name, field])
}

deny contains msg if {
	checked
	some volume in list_field(pod_spec, "volumes")
	volume.hostPath
	msg := sprintf("volume %s must not mount a hostPath", [volume.name])
}

warn contains msg if {
	checked
	some c in list_field(pod_spec, "containers")
	not c.readinessProbe
	msg := sprintf("container %s has no readinessProbe", [c.name])
}

warn contains msg if {
	checked
	class == "prod"
	some c in all_containers
	not contains(c.image, "@sha256:")
	msg := sprintf("container %s: pin prod images by digest", [c.name])
}

# --- namespaces

deny contains msg if {
	checked
	kind == "Namespace"
	labels[settings.labels.class] == "feature"
	not annotations[settings.ttl_annotation]
	msg := sprintf("feature namespace %s must carry the %s annotation", [object_name, settings.ttl_annotation])
}

# --- network objects, through the network guardrails

# What the network guardrails read of an object. Naming the fields (rather
# than passing the whole object) keeps status and bookkeeping metadata
# (resourceVersion, managedFields) out of what this policy reads, so the
# decision cache shares answers across reviews that differ only there.
network_view := {
	"kind": kind,
	"metadata": {
		"name": object.get(obj, ["metadata", "name"], ""),
		"namespace": object.get(obj, ["metadata", "namespace"], namespace),
		"labels": labels,
	},
	"spec": object.get(obj, "spec", {}),
}

deny contains msg if {
	checked
	kind in {"NetworkPolicy", "Service"}
	some v in data.network.object_violations(network_view, {"team": team, "class": class})
	msg := v.message
}

# An Ingress host must not be a wildcard outside prod.
deny contains msg if {
	checked
	kind == "Ingress"
	class != "prod"
	some rule in list_field(obj.spec, "rules")
	startswith(rule.host, "*.")
	msg := sprintf("Ingress %s: wildcard host %s is only allowed in prod", [object_name, rule.host])
}
