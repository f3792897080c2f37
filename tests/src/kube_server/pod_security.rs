//! The test API server's Pod Security admission for namespaces that enforce `restricted`: the
//! checks of the `restricted` profile that concern the fields alsy sets, with the real admission
//! plugin's messages (`violates PodSecurity "restricted:latest": …`, HTTP 403). The `baseline`
//! checks (privileged, host namespaces, hostPath, …) are not made: alsy never sets those fields.

use k8s_openapi::api::core::v1::{Container, Pod};

/// Why `restricted` refuses `pod`, as the admission plugin words it; `None` if it is admitted.
pub fn restricted_violations(pod: &Pod) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let pod_context = spec.security_context.as_ref();
    let containers: Vec<&Container> = spec.containers.iter().collect();
    let names = |failing: Vec<&Container>| {
        failing
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let plural = |failing: &[&Container]| if failing.len() == 1 { "" } else { "s" };
    let mut problems = Vec::new();

    let escalating: Vec<&Container> = containers
        .iter()
        .copied()
        .filter(|c| {
            c.security_context
                .as_ref()
                .and_then(|s| s.allow_privilege_escalation)
                != Some(false)
        })
        .collect();
    if !escalating.is_empty() {
        problems.push(format!(
            "allowPrivilegeEscalation != false (container{} {} must set securityContext.allowPrivilegeEscalation=false)",
            plural(&escalating),
            names(escalating.clone())
        ));
    }

    let capable: Vec<&Container> = containers
        .iter()
        .copied()
        .filter(|c| {
            let caps = c
                .security_context
                .as_ref()
                .and_then(|s| s.capabilities.as_ref());
            let drops_all = caps
                .and_then(|caps| caps.drop.as_ref())
                .is_some_and(|drop| drop.iter().any(|d| d == "ALL"));
            let adds_more = caps
                .and_then(|caps| caps.add.as_ref())
                .is_some_and(|add| add.iter().any(|a| a != "NET_BIND_SERVICE"));
            !drops_all || adds_more
        })
        .collect();
    if !capable.is_empty() {
        problems.push(format!(
            "unrestricted capabilities (container{} {} must set securityContext.capabilities.drop=[\"ALL\"])",
            plural(&capable),
            names(capable.clone())
        ));
    }

    let pod_non_root = pod_context.and_then(|s| s.run_as_non_root);
    let rooted: Vec<&Container> = containers
        .iter()
        .copied()
        .filter(|c| {
            let own = c.security_context.as_ref().and_then(|s| s.run_as_non_root);
            own.or(pod_non_root) != Some(true)
        })
        .collect();
    if !rooted.is_empty() {
        problems.push(format!(
            "runAsNonRoot != true (pod or container{} {} must set securityContext.runAsNonRoot=true)",
            plural(&rooted),
            names(rooted.clone())
        ));
    }
    if pod_context.and_then(|s| s.run_as_user) == Some(0) {
        problems.push("runAsUser=0 (pod must not set runAsUser=0)".to_owned());
    }

    let pod_seccomp = pod_context
        .and_then(|s| s.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str());
    let allowed = |profile: Option<&str>| matches!(profile, Some("RuntimeDefault" | "Localhost"));
    let unconfined: Vec<&Container> = containers
        .iter()
        .copied()
        .filter(|c| {
            let own = c
                .security_context
                .as_ref()
                .and_then(|s| s.seccomp_profile.as_ref())
                .map(|p| p.type_.as_str());
            !allowed(own.or(pod_seccomp))
        })
        .collect();
    if !unconfined.is_empty() {
        problems.push(format!(
            "seccompProfile (pod or container{} {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
            plural(&unconfined),
            names(unconfined.clone())
        ));
    }

    (!problems.is_empty()).then(|| problems.join(", "))
}
