//! What the Kubernetes runtime must get right that the fake cannot show: status codes as success
//! or as retryable errors naming the pod, bounded calls, no retries inside a pass, a restart that
//! never waits for a terminating pod, the label selector, paging, the rate limit, and foreign pods.

use std::time::Duration;

use alsy_app::{PodRuntime, Restarted, RuntimeError};
use alsy_domain::{Algorithm, PodName, PodPhase};
use alsy_k8s::{KubeRuntime, KubeSettings, PodSecurity};
use alsy_tests::fixtures::{LOAD_MARGIN, eventually};
use alsy_tests::kube_server::{Fault, KubeServer, Verb};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::time::Instant;

use super::{Kube, NS, connect, desired, test_settings};

#[tokio::test]
async fn a_retry_after_from_a_429_or_503_is_surfaced_as_throttled_without_retrying() {
    let kube = Kube::start().await;
    let pod = desired(Algorithm::named("VWAP"), 1);
    // The test server's 429 carries `Retry-After: 1`, as kube-apiserver's does; the other two
    // carry it in the header alone, with a body that says nothing of it.
    for (fault, wait) in [
        (Fault::Status(429), 1),
        (
            Fault::Throttle {
                code: 429,
                retry_after: 7,
            },
            7,
        ),
        (
            Fault::Throttle {
                code: 503,
                retry_after: 3,
            },
            3,
        ),
    ] {
        kube.server.clear_requests();
        kube.server.inject(Verb::Create, Some("vwap-1"), 1, fault);
        let error = kube.runtime.create(&pod).await.unwrap_err();
        match &error {
            RuntimeError::Throttled {
                pod: Some(p),
                retry_after,
                ..
            } if p.as_str() == "vwap-1" => {
                assert_eq!(*retry_after, Duration::from_secs(wait), "{error}");
            }
            other => panic!("expected Throttled naming vwap-1, got {other:?}"),
        }
        assert!(
            error.to_string().contains(&format!("retry after {wait}s")),
            "{error}"
        );
        assert_eq!(
            kube.server.requests().len(),
            1,
            "the throttled call was retried"
        );
    }
    // A 500 asks for no wait, and a header without a 429 or 503 means nothing.
    kube.server.inject(
        Verb::Create,
        Some("vwap-1"),
        1,
        Fault::Throttle {
            code: 500,
            retry_after: 9,
        },
    );
    let error = kube.runtime.create(&pod).await.unwrap_err();
    assert!(
        matches!(error, RuntimeError::Unavailable { .. }),
        "{error:?}"
    );
}

fn assert_unavailable_for(error: RuntimeError, pod: &str) {
    match &error {
        RuntimeError::Unavailable { pod: Some(p), .. } if p.as_str() == pod => {}
        other => panic!("expected Unavailable naming {pod}, got {other:?}"),
    }
    assert!(error.to_string().contains(pod), "{error}");
}

#[tokio::test]
async fn a_409_on_create_is_success_only_when_the_pod_there_is_alsys() {
    let kube = Kube::start().await;
    let pod = desired(Algorithm::named("VWAP"), 1);
    kube.runtime.create(&pod).await.unwrap();
    // The second create gets 409; the pod read back carries alsy's label.
    kube.runtime.create(&pod).await.unwrap();
    let verbs: Vec<Option<Verb>> = kube
        .server
        .requests_for("vwap-1")
        .into_iter()
        .map(|r| r.verb)
        .collect();
    assert_eq!(
        verbs,
        [Some(Verb::Create), Some(Verb::Create), Some(Verb::Get)]
    );

    // A 409 for a pod that is gone when read back is not a running pod: retried next pass.
    kube.server
        .inject(Verb::Create, Some("vwap-2"), 1, Fault::Status(409));
    match kube
        .runtime
        .create(&desired(Algorithm::named("VWAP"), 2))
        .await
    {
        Err(RuntimeError::Unavailable {
            pod: Some(name), ..
        }) => assert_eq!(name.as_str(), "vwap-2"),
        other => panic!("expected Unavailable naming vwap-2, got {other:?}"),
    }
}

#[tokio::test]
async fn an_injected_404_on_delete_counts_as_success() {
    let kube = Kube::start().await;
    kube.server
        .inject(Verb::Delete, Some("vwap-1"), 1, Fault::Status(404));
    let name = PodName::parse("vwap-1").unwrap();
    kube.runtime.delete(&name).await.unwrap();
}

#[tokio::test]
async fn throttling_and_server_errors_are_unavailable_naming_the_pod_without_retrying() {
    let kube = Kube::start().await;
    let pod = desired(Algorithm::named("VWAP"), 1);
    for code in [500, 503, 504] {
        kube.server.clear_requests();
        kube.server
            .inject(Verb::Create, Some("vwap-1"), 1, Fault::Status(code));
        let error = kube.runtime.create(&pod).await.unwrap_err();
        assert_unavailable_for(error, "vwap-1");
        // kube would retry 429/503/504 for minutes; a pass must not stall on one pod.
        assert_eq!(kube.server.requests().len(), 1, "HTTP {code} was retried");
    }
    kube.server
        .inject(Verb::Delete, Some("vwap-1"), 1, Fault::Status(500));
    let error = kube.runtime.delete(&pod.name).await.unwrap_err();
    assert_unavailable_for(error, "vwap-1");
    kube.server
        .inject(Verb::Delete, Some("vwap-1"), 1, Fault::Status(504));
    let error = kube.runtime.restart(&pod).await.unwrap_err();
    assert_unavailable_for(error, "vwap-1");
    kube.server.inject(Verb::List, None, 1, Fault::Status(503));
    let error = kube.runtime.list().await.unwrap_err();
    assert!(
        matches!(error, RuntimeError::Unavailable { pod: None, .. }),
        "{error:?}"
    );
    // The faults are used up: the next attempt (the next pass) succeeds.
    kube.runtime.create(&pod).await.unwrap();
    assert_eq!(kube.runtime.list().await.unwrap().len(), 1);
}

#[tokio::test]
async fn other_client_errors_are_rejected_naming_the_pod() {
    let kube = Kube::start().await;
    for code in [400, 403, 422] {
        kube.server
            .inject(Verb::Create, Some("twap-5"), 1, Fault::Status(code));
        let error = kube
            .runtime
            .create(&desired(Algorithm::named("TWAP"), 5))
            .await
            .unwrap_err();
        assert!(
            matches!(&error, RuntimeError::Rejected { pod: Some(p), .. } if p.as_str() == "twap-5"),
            "HTTP {code}: {error:?}"
        );
    }
}

#[tokio::test]
async fn a_call_that_gets_no_answer_is_unavailable_within_the_request_timeout() {
    let timeout = Duration::from_millis(300);
    let settings = KubeSettings {
        request_timeout: timeout,
        ..test_settings()
    };
    let kube = Kube::start_with(settings).await;
    let hang = Fault::Delay(Duration::from_secs(30));
    kube.server
        .inject(Verb::Create, Some("hft-1"), 1, hang.clone());
    let began = Instant::now();
    let error = kube
        .runtime
        .create(&desired(Algorithm::named("HFT"), 1))
        .await
        .unwrap_err();
    let took = began.elapsed();
    assert_unavailable_for(error, "hft-1");
    // The hang is 30 s: ending within timeout + LOAD_MARGIN means the timeout ended it.
    assert!(
        took >= timeout && took < timeout + LOAD_MARGIN,
        "took {took:?}"
    );

    kube.server.inject(Verb::List, None, 1, hang);
    let began = Instant::now();
    assert!(kube.runtime.list().await.unwrap_err().is_retryable());
    assert!(
        began.elapsed() < timeout + LOAD_MARGIN,
        "the timeout, not the 30 s hang"
    );
}

#[tokio::test]
async fn an_unreachable_api_server_is_unavailable_naming_the_pod() {
    let server = KubeServer::start().await;
    // The server's kubeconfigs go with it: keep a copy that outlives it.
    let kubeconfig = tempfile::NamedTempFile::new().unwrap();
    std::fs::copy(server.write_kubeconfig(NS), kubeconfig.path()).unwrap();
    let addr = server.url().trim_start_matches("http://").to_owned();
    drop(server);
    eventually(
        "the test server stops listening",
        Duration::from_secs(5),
        || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(addr).await.is_err() }
        },
    )
    .await;
    // A request timeout far beyond any scheduling delay: ending before it means the refusal
    // ended the call.
    let request_timeout = Duration::from_secs(60);
    let settings = KubeSettings {
        request_timeout,
        ..test_settings()
    };
    let runtime = connect(kubeconfig.path(), &settings).await;
    let began = Instant::now();
    let error = runtime
        .create(&desired(Algorithm::named("VWAP"), 1))
        .await
        .unwrap_err();
    assert!(began.elapsed() < request_timeout, "refused, not timed out");
    assert!(
        error.to_string().to_lowercase().contains("connect"),
        "{error}"
    );
    assert_unavailable_for(error, "vwap-1");
}

#[tokio::test]
async fn restart_deletes_a_running_pod_and_returns_without_waiting_for_its_grace_period() {
    let kube = Kube::start().await;
    kube.server.set_termination_grace(Duration::from_secs(3600));
    let pod = desired(Algorithm::named("VWAP"), 7);
    kube.runtime.create(&pod).await.unwrap();
    let old_uid = kube.server.pod(NS, "vwap-7").unwrap().metadata.uid;
    kube.server.clear_requests();

    let restarted = kube.runtime.restart(&pod).await.unwrap();

    assert_eq!(restarted, Restarted::OldPodTerminating);
    let verbs: Vec<Verb> = kube
        .server
        .requests_for("vwap-7")
        .iter()
        .filter_map(|r| r.verb)
        .collect();
    assert_eq!(verbs, [Verb::Delete], "one delete, no polling, no create");
    let old = kube.server.pod(NS, "vwap-7").unwrap();
    assert_eq!(old.metadata.uid, old_uid);
    assert!(old.metadata.deletion_timestamp.is_some());
    let listed = kube.runtime.list().await.unwrap();
    assert_eq!(listed[0].phase, PodPhase::Terminating);
}

#[tokio::test]
async fn a_restart_whose_create_finds_the_old_pod_still_there_reports_it_terminating() {
    // A pod deleted without a grace period can still linger (a finalizer holds it): the create
    // that follows answers 409, which must not pass for a replacement.
    let kube = Kube::start().await;
    let pod = desired(Algorithm::named("TWAP"), 8);
    kube.runtime.create(&pod).await.unwrap();
    kube.server
        .inject(Verb::Create, Some("twap-8"), 1, Fault::Status(409));
    let restarted = kube.runtime.restart(&pod).await.unwrap();
    assert_eq!(restarted, Restarted::OldPodTerminating);
}

#[tokio::test]
async fn no_request_ever_touches_a_pod_without_alsys_label() {
    let kube = Kube::start().await;
    kube.server.insert_foreign_pod(NS, "nginx");
    kube.server.insert_foreign_pod(NS, "vwap-99");
    let ours = desired(Algorithm::named("VWAP"), 1);
    kube.runtime.create(&ours).await.unwrap();
    kube.runtime.restart(&ours).await.unwrap();
    assert_eq!(kube.runtime.list().await.unwrap().len(), 1);
    kube.runtime.delete(&ours.name).await.unwrap();
    assert!(kube.runtime.list().await.unwrap().is_empty());

    for request in kube.server.requests() {
        assert!(
            !matches!(request.pod.as_deref(), Some("nginx" | "vwap-99")),
            "{request:?}"
        );
        if request.verb == Some(Verb::List) {
            assert_eq!(
                request.param("labelSelector"),
                Some("app.kubernetes.io/managed-by=alsy")
            );
        }
    }
    assert!(kube.server.pod(NS, "nginx").is_some());
    assert!(kube.server.pod(NS, "vwap-99").is_some());
}

#[tokio::test]
async fn list_filters_foreign_pods_even_when_the_server_ignores_the_selector() {
    let kube = Kube::start().await;
    kube.server.ignore_label_selector(true);
    kube.server.insert_foreign_pod(NS, "vwap-99");
    kube.runtime
        .create(&desired(Algorithm::named("VWAP"), 1))
        .await
        .unwrap();
    let names: Vec<String> = kube
        .runtime
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name.to_string())
        .collect();
    assert_eq!(names, vec!["vwap-1"]);
}

#[tokio::test]
async fn list_reads_every_page_of_a_large_namespace_and_skips_bad_names() {
    let kube = Kube::start().await;
    for id in 1..=1203 {
        kube.server.insert_pod(
            NS,
            alsy_k8s::pod_manifest(
                &desired(Algorithm::named("VWAP"), id),
                PodSecurity::default(),
            ),
        );
    }
    // Managed, but named as a DNS subdomain, which no PodName can hold.
    let mut dotted =
        alsy_k8s::pod_manifest(&desired(Algorithm::named("HFT"), 1), PodSecurity::default());
    dotted.metadata = ObjectMeta {
        name: Some("hft.1".into()),
        ..dotted.metadata
    };
    kube.server.insert_pod(NS, dotted);
    kube.server.clear_requests();

    let listed = kube.runtime.list().await.unwrap();

    assert_eq!(listed.len(), 1203);
    let pages = kube.server.requests();
    assert_eq!(pages.len(), 3, "pages of 500");
    assert!(pages.iter().all(|r| r.param("limit") == Some("500")));
    assert!(pages[0].param("continue").is_none());
    assert!(pages[1..].iter().all(|r| r.param("continue").is_some()));
}

#[tokio::test]
async fn the_rate_limit_spreads_requests_over_time() {
    let settings = KubeSettings {
        qps: 10,
        ..test_settings()
    };
    let kube = Kube::start_with(settings).await;
    let runtime: KubeRuntime = kube.runtime.clone();
    let began = Instant::now();
    let creates = (1..=15).map(|id| {
        let runtime = runtime.clone();
        tokio::spawn(async move { runtime.create(&desired(Algorithm::named("VWAP"), id)).await })
    });
    for create in creates.collect::<Vec<_>>() {
        create.await.unwrap().unwrap();
    }
    let requests = kube.server.requests();
    assert_eq!(requests.len(), 15);
    // A burst of 10, then 5 more at 100ms each: the 15th cannot leave before 500ms after the
    // first call. Measured from before the first call (not from the first request's arrival,
    // which a loaded machine can delay and so shorten the span), a slow machine only lengthens
    // it: this bound holds under any load and fails only without the limit.
    let span = requests[14].at - began;
    assert!(
        span >= Duration::from_millis(450),
        "15 requests within {span:?}"
    );
}

#[tokio::test]
async fn a_kubeconfig_server_without_a_scheme_is_refused_at_start() {
    // Removed when dropped, whether the test passes or not.
    let file = tempfile::Builder::new()
        .prefix("alsy-kubeconfig-noscheme-")
        .suffix(".yaml")
        .tempfile()
        .unwrap();
    let path = file.path();
    std::fs::write(
        path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: 127.0.0.1:6443\n\
         users:\n- name: u\n  user: {}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n",
    )
    .unwrap();
    let result = KubeRuntime::from_kubeconfig(path, &test_settings(), &super::quiet()).await;
    let error = result.err().expect("refused");
    assert!(error.to_string().contains("127.0.0.1:6443"), "{error}");
}

#[tokio::test]
async fn the_namespace_comes_from_the_kubeconfig_unless_the_settings_name_one() {
    let server = KubeServer::start().await;
    let kubeconfig = server.write_kubeconfig("from-kubeconfig");
    let runtime = connect(&kubeconfig, &test_settings()).await;
    assert_eq!(runtime.namespace(), "from-kubeconfig");
    runtime
        .create(&desired(Algorithm::named("VWAP"), 1))
        .await
        .unwrap();
    assert!(server.pod("from-kubeconfig", "vwap-1").is_some());

    let settings = KubeSettings {
        namespace: Some("trading".into()),
        ..test_settings()
    };
    let runtime = connect(&kubeconfig, &settings).await;
    assert_eq!(runtime.namespace(), "trading");
    assert!(runtime.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_pod_refused_by_pod_security_is_rejected_naming_the_policy_and_the_setting() {
    let kube = Kube::start_with(KubeSettings {
        pod_security: PodSecurity::Baseline,
        ..test_settings()
    })
    .await;
    kube.server.enforce_restricted(NS);
    let error = kube
        .runtime
        .create(&desired(Algorithm::named("VWAP"), 1))
        .await
        .unwrap_err();
    assert!(!error.is_retryable(), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("HTTP 403 Forbidden")
            && text.contains("violates PodSecurity \"restricted:latest\": runAsNonRoot != true")
            && text.contains("ALSY__K8S__POD_SECURITY"),
        "{text}"
    );
    // The default pods pass.
    let restricted = connect(&kube.server.write_kubeconfig(NS), &test_settings()).await;
    restricted
        .create(&desired(Algorithm::named("VWAP"), 1))
        .await
        .unwrap();
}

#[tokio::test]
async fn restarting_a_failed_pod_does_not_wait_for_a_grace_period() {
    // The API server deletes a finished pod at once, whatever the grace period.
    let kube = Kube::start().await;
    kube.server.set_termination_grace(Duration::from_secs(3600));
    let pod = desired(Algorithm::named("HFT"), 3);
    kube.runtime.create(&pod).await.unwrap();
    let before = kube.server.pod(NS, "hft-3").unwrap().metadata.uid;
    assert!(kube.server.set_phase(NS, "hft-3", "Failed"));
    let restarted = kube.runtime.restart(&pod).await.unwrap();
    assert_eq!(restarted, Restarted::Replaced);
    let after = kube.server.pod(NS, "hft-3").unwrap();
    assert_ne!(after.metadata.uid, before);
    assert!(after.metadata.deletion_timestamp.is_none());
}
