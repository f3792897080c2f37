//! The test API server's watch (`GET .../pods?watch=true`), as kube-apiserver serves one: a
//! chunked stream of newline-delimited events (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`,
//! `ERROR`) from `resourceVersion` on, filtered by `labelSelector`, for `timeoutSeconds`.
//!
//! The store records every change of a pod as an event with its resource version ([`WatchLog`]).
//! A watch from version `R` first gets the retained events after `R`, then the live ones. The log
//! keeps a bounded window, as the API server's watch cache does: a watch from a version older
//! than the window gets `410 Gone` as an `ERROR` event in a 200 stream (reason `Expired`, which is
//! how kube-apiserver answers), and the client must list again. Without `resourceVersion` (or
//! with `0`) the stream starts with a synthetic `ADDED` for every current pod.
//!
//! Tests can end every open stream ([`super::KubeServer::drop_watches`]), send a bookmark now,
//! and forget the window ([`super::KubeServer::expire_watch_history`]).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use warp::http::header;
use warp::hyper::body::Bytes;
use warp::reply::{Reply, Response};

use super::http::{Shared, lock};
use super::selector::Selector;
use super::store::{Answer, status};

/// Events the log keeps by default, like a watch cache's window.
pub(crate) const HISTORY: usize = 10_000;
/// Lines a stream may fall behind the live events before it is ended with `410 Gone`.
const LIVE_BACKLOG: usize = 65_536;
/// kube-apiserver ends a watch without `timeoutSeconds` after 30 to 60 minutes.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// kube-apiserver sends a bookmark about once a minute to watches that allow them.
pub(crate) const BOOKMARK_INTERVAL: Duration = Duration::from_secs(60);

/// The type of a watch event about a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    Added,
    Modified,
    Deleted,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Added => "ADDED",
            Change::Modified => "MODIFIED",
            Change::Deleted => "DELETED",
        }
    }
}

/// One recorded event, serialised once for every stream.
#[derive(Debug)]
pub(crate) struct Record {
    version: u64,
    namespace: String,
    labels: BTreeMap<String, String>,
    line: Bytes,
}

impl Record {
    fn selected(&self, namespace: &str, selector: &Selector) -> bool {
        self.namespace == namespace && selector.matches(&self.labels)
    }
}

/// What goes to every open stream.
#[derive(Debug, Clone)]
enum Live {
    Event(Arc<Record>),
    Bookmark(u64),
    /// End every stream now, as a restarted API server or a broken connection does.
    Drop,
}

/// The events of the store, for watches.
pub(crate) struct WatchLog {
    history: VecDeque<Arc<Record>>,
    limit: usize,
    /// The newest version whose events are no longer kept: watching from an older one is 410.
    compacted: u64,
    live: broadcast::Sender<Live>,
    pub(crate) bookmark_interval: Duration,
}

impl WatchLog {
    pub(crate) fn new(first_version: u64) -> WatchLog {
        WatchLog {
            history: VecDeque::new(),
            limit: HISTORY,
            compacted: first_version,
            live: broadcast::Sender::new(LIVE_BACKLOG),
            bookmark_interval: BOOKMARK_INTERVAL,
        }
    }

    /// Records that `pod` (in `namespace`) changed at `version`, as its new state.
    pub(crate) fn record(&mut self, change: Change, namespace: &str, pod: &Pod, version: u64) {
        let event = json!({"type": change.as_str(), "object": pod});
        let record = Arc::new(Record {
            version,
            namespace: namespace.to_owned(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            line: line(&event),
        });
        while self.history.len() >= self.limit.max(1) {
            if let Some(oldest) = self.history.pop_front() {
                self.compacted = oldest.version;
            }
        }
        self.history.push_back(record.clone());
        // No open stream is no error.
        let _ = self.live.send(Live::Event(record));
    }

    /// Keeps at most `limit` events from now on.
    pub(crate) fn set_limit(&mut self, limit: usize) {
        self.limit = limit;
    }

    /// Forgets every event: a watch from any version before `current` gets 410 from now on.
    pub(crate) fn expire(&mut self, current: u64) {
        self.history.clear();
        self.compacted = current;
    }

    /// How many streams are open now.
    pub(crate) fn open_streams(&self) -> usize {
        self.live.receiver_count()
    }

    /// Ends every open stream.
    pub(crate) fn drop_all(&self) {
        let _ = self.live.send(Live::Drop);
    }

    /// Sends a bookmark at `current` to every stream that allows them.
    pub(crate) fn bookmark(&self, current: u64) {
        let _ = self.live.send(Live::Bookmark(current));
    }
}

/// What a watch request asked for.
struct Request {
    namespace: String,
    selector: Selector,
    /// `None`: start with the current pods.
    from: Option<u64>,
    bookmarks: bool,
    timeout: Duration,
}

impl Request {
    fn parse(namespace: &str, query: &[(String, String)]) -> Result<Request, Answer> {
        let param = |key: &str| {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let selector = Selector::parse(param("labelSelector").unwrap_or_default())
            .map_err(|message| status(400, message, None))?;
        let from = match param("resourceVersion").unwrap_or_default() {
            "" | "0" => None,
            raw => Some(raw.parse::<u64>().map_err(|_| {
                status(
                    400,
                    format!("resourceVersion: Invalid value: \"{raw}\": must be an integer"),
                    None,
                )
            })?),
        };
        let timeout = match param("timeoutSeconds") {
            None => DEFAULT_TIMEOUT,
            Some(raw) => Duration::from_secs(raw.parse::<u64>().map_err(|_| {
                status(400, format!("timeoutSeconds: invalid value {raw:?}"), None)
            })?),
        };
        if param("sendInitialEvents") == Some("true") {
            return Err(status(
                400,
                "sendInitialEvents is not supported by the test API server".into(),
                None,
            ));
        }
        Ok(Request {
            namespace: namespace.to_owned(),
            selector,
            from,
            bookmarks: param("allowWatchBookmarks") == Some("true"),
            timeout,
        })
    }
}

/// Answers a watch request: a streamed 200, or a `Status` for a malformed one.
pub(crate) fn respond(
    shared: &Shared,
    namespace: &str,
    query: &[(String, String)],
) -> Result<Response, Answer> {
    let request = Request::parse(namespace, query)?;
    let (sender, receiver) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    // Under one lock: the events before the stream joins and the live ones after, no gap.
    let (start, live) = {
        let mut store = lock(shared);
        let current = store.current_version();
        let first = match request.from {
            None => store
                .current_pods(&request.namespace)
                .into_iter()
                .filter(|pod| {
                    request
                        .selector
                        .matches(pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
                })
                .map(|pod| line(&json!({"type": "ADDED", "object": pod})))
                .collect(),
            Some(from) if from < store.watch.compacted => vec![gone(from, store.watch.compacted)],
            Some(from) => store
                .watch
                .history
                .iter()
                .filter(|r| r.version > from && r.selected(&request.namespace, &request.selector))
                .map(|r| r.line.clone())
                .collect(),
        };
        let expired = matches!(request.from, Some(from) if from < store.watch.compacted);
        let live = store.watch.live.subscribe();
        let start = Start {
            first,
            expired,
            version: request.from.unwrap_or(current),
            bookmark_interval: store.watch.bookmark_interval,
        };
        (start, live)
    };
    tokio::spawn(stream(request, start, live, sender));
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|chunk| (chunk, receiver))
    });
    let mut response = warp::reply::stream(body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

/// How a stream begins.
struct Start {
    /// The lines to send before the live events.
    first: Vec<Bytes>,
    /// The first line is `410 Gone`: the stream ends after it.
    expired: bool,
    /// The version the client has seen everything up to once `first` is sent.
    version: u64,
    bookmark_interval: Duration,
}

/// Writes one stream until it times out, is dropped, falls behind, or the client goes away.
async fn stream(
    request: Request,
    start: Start,
    mut live: broadcast::Receiver<Live>,
    sender: mpsc::Sender<Result<Bytes, Infallible>>,
) {
    for line in start.first {
        if sender.send(Ok(line)).await.is_err() {
            return;
        }
    }
    if start.expired {
        return;
    }
    let deadline = tokio::time::Instant::now() + request.timeout;
    let mut bookmarks = tokio::time::interval(start.bookmark_interval);
    bookmarks.tick().await;
    let mut last = start.version;
    loop {
        let line = tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return,
            _ = bookmarks.tick(), if request.bookmarks => Some(bookmark(last)),
            message = live.recv() => match message {
                Ok(Live::Event(record)) if record.version > last => {
                    last = record.version;
                    record.selected(&request.namespace, &request.selector).then(|| record.line.clone())
                }
                Ok(Live::Event(_)) => None,
                Ok(Live::Bookmark(at)) => {
                    last = last.max(at);
                    request.bookmarks.then(|| bookmark(at))
                }
                Ok(Live::Drop) | Err(broadcast::error::RecvError::Closed) => return,
                // Too slow to follow: as kube-apiserver, end with 410 so the client lists again.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = sender.send(Ok(gone(last, last))).await;
                    return;
                }
            },
        };
        if let Some(line) = line
            && sender.send(Ok(line)).await.is_err()
        {
            return;
        }
    }
}

fn line(event: &Value) -> Bytes {
    let mut text = event.to_string();
    text.push('\n');
    Bytes::from(text)
}

fn bookmark(version: u64) -> Bytes {
    line(&json!({
        "type": "BOOKMARK",
        "object": {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": version.to_string()}},
    }))
}

/// The `ERROR` event kube-apiserver sends for a version older than its window.
fn gone(asked: u64, oldest: u64) -> Bytes {
    let body = status(
        410,
        format!("too old resource version: {asked} ({oldest})"),
        None,
    )
    .body;
    line(&json!({"type": "ERROR", "object": body}))
}
