//! The dashboard: a local web UI over the store, served by `spectacular dashboard`. It is one
//! more projection of the logs: its JSON (`api.rs`) is built by the read side's functions
//! (`query`), its live updates (`live.rs`) come from watching the logs grow, and its buttons
//! (`actions.rs`) run the same commands as the CLI (`approve`, `answer`, `cancel`, which go
//! through the inbox of a running engine), so everything they do is an event like any other.
//!
//! Security: it binds to 127.0.0.1 unless told otherwise (binding elsewhere needs a token the
//! user chose); every API request needs the token (a header, or `?token=` for the page's
//! event stream), and on a loopback address a `Host` naming it (no DNS rebinding);
//! state-changing requests are `POST` only and need an `Origin` of the dashboard itself.
//! The pages (`assets/`, embedded in the binary) hold no data and no secret: the data comes
//! from the logs, already redacted, and attempts' logs are redacted again when read.

mod actions;
pub mod api;
mod graph;
mod live;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use crate::record::{self, Store};

/// The header that carries the token.
pub const TOKEN_HEADER: &str = "x-spectacular-token";

/// How a dashboard is served.
#[derive(Clone, Debug)]
pub struct Settings {
    pub store: Store,
    pub bind: IpAddr,
    /// 0: any free port.
    pub port: u16,
    pub token: String,
    /// Refuse every state-changing request.
    pub read_only: bool,
    /// The `spectacular` binary the buttons run (`approve`, `answer`, `cancel`, `resume`).
    pub exe: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the dashboard stopped: {0}")]
    Serve(std::io::Error),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Record(#[from] record::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::Refused(_) => StatusCode::CONFLICT,
            Error::Record(record::Error::UnknownRun { .. })
            | Error::Record(record::Error::AmbiguousRun { .. }) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = serde_json::json!({ "error": self.to_string() });
        (status, Json(body)).into_response()
    }
}

/// What every handler shares.
struct Shared {
    settings: Settings,
    /// `Host` values a request may carry (on a loopback address); empty: any.
    hosts: Vec<String>,
    costs: api::CostCache,
}

type AppState = Arc<Shared>;

/// A dashboard bound to its address, not serving yet.
pub struct Server {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: AppState,
}

impl Server {
    /// Bind the address of `settings`.
    pub async fn bind(settings: Settings) -> Result<Server, Error> {
        let wanted = SocketAddr::new(settings.bind, settings.port);
        let listener = tokio::net::TcpListener::bind(wanted)
            .await
            .map_err(|source| Error::Bind {
                addr: wanted,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: wanted,
            source,
        })?;
        let hosts = if addr.ip().is_loopback() {
            let port = addr.port();
            let mut hosts = vec![
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
            ];
            hosts.push(SocketAddr::new(addr.ip(), port).to_string());
            hosts
        } else {
            Vec::new()
        };
        let state = Arc::new(Shared {
            settings,
            hosts,
            costs: api::CostCache::default(),
        });
        Ok(Server {
            listener,
            addr,
            state,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL to open, with the token.
    pub fn url(&self) -> String {
        let host = if self.addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), self.addr.port()).to_string()
        } else {
            self.addr.to_string()
        };
        format!("http://{host}/?token={}", self.state.settings.token)
    }

    /// Serve until the future ends with an error (or the task is dropped).
    pub async fn serve(self) -> Result<(), Error> {
        axum::serve(self.listener, router(self.state))
            .await
            .map_err(Error::Serve)
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(script))
        .route("/app.css", get(style))
        .route("/api/runs", get(runs))
        .route("/api/runs/{run}", get(run))
        .route("/api/runs/{run}/board", get(board))
        .route("/api/runs/{run}/report", get(report))
        .route("/api/runs/{run}/log", get(log))
        .route("/api/runs/{run}/approve", post(actions::approve))
        .route("/api/runs/{run}/answer", post(actions::answer))
        .route("/api/runs/{run}/cancel", post(actions::cancel))
        .route("/api/costs", get(costs))
        .route("/api/stream", get(live::stream))
        .with_state(state)
}

/// A fresh random token: 128 bits from the operating system, in hex.
pub fn random_token() -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Equal, in a time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A request that carries the token, to a `Host` this dashboard answers to.
pub(crate) struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        check_host(&parts.headers, state)?;
        let from_header = parts
            .headers
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok());
        let from_query = parts.uri.query().and_then(|q| {
            q.split('&')
                .find_map(|pair| pair.strip_prefix("token="))
                .map(str::to_string)
        });
        let given = from_header.map(str::to_string).or(from_query);
        match given {
            Some(t) if same_secret(&t, &state.settings.token) => Ok(Authorized),
            Some(_) => Err(Error::Unauthorized(
                "wrong token: open the URL `spectacular dashboard` printed".into(),
            )),
            None => Err(Error::Unauthorized(
                "this request needs the dashboard's token: open the URL `spectacular dashboard` printed".into(),
            )),
        }
    }
}

/// An authorized request that may change a run: the dashboard is not read-only, and the
/// request comes from its own pages (`Origin` is the dashboard, and a browser that says where
/// the request came from says `same-origin`). Routes taking it are `POST` only.
pub(crate) struct Writer;

impl FromRequestParts<AppState> for Writer {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        Authorized::from_request_parts(parts, state).await?;
        if state.settings.read_only {
            return Err(Error::Forbidden(
                "the dashboard is read-only (`--read-only`)".into(),
            ));
        }
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let host = header("host").unwrap_or_default();
        let same = header("origin").is_some_and(|o| o == format!("http://{host}"));
        if !same {
            return Err(Error::Forbidden(
                "cross-origin request refused: actions come from the dashboard's own pages".into(),
            ));
        }
        if header("sec-fetch-site").is_some_and(|s| s != "same-origin") {
            return Err(Error::Forbidden(
                "cross-site request refused: actions come from the dashboard's own pages".into(),
            ));
        }
        Ok(Writer)
    }
}

/// On a loopback address, the `Host` must name it: a page of another site whose name was
/// made to resolve to 127.0.0.1 (DNS rebinding) gets nothing.
fn check_host(headers: &HeaderMap, state: &Shared) -> Result<(), Error> {
    if state.hosts.is_empty() {
        return Ok(());
    }
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if state.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "unknown host `{host}`: open the dashboard at the address it printed"
        )))
    }
}

/// Run blocking reads of the store off the async runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
}

/// A run id from a path: an exact id or a unique prefix of one.
fn resolve(store: &Store, run: &str) -> Result<String, Error> {
    Ok(store.resolve_run(run)?)
}

/// The JSON a handler reads about the run `run` names, read off the async threads.
async fn of_run(
    state: &AppState,
    run: String,
    read: impl FnOnce(&Store, &str) -> Result<Value, Error> + Send + 'static,
) -> Result<Json<Value>, Error> {
    let store = state.settings.store.clone();
    blocking(move || {
        let run_id = resolve(&store, &run)?;
        Ok(Json(read(&store, &run_id)?))
    })
    .await
}

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/app.css");

/// The headers of every page and asset: no framing by other sites, no scripts but ours, no
/// referrer (the URL holds the token).
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'",
        ),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn index(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Error> {
    check_host(&headers, &state)?;
    Ok(asset("text/html; charset=utf-8", INDEX))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

async fn runs(_: Authorized, State(state): State<AppState>) -> Result<Json<Value>, Error> {
    blocking(move || Ok(Json(api::runs(&state.settings.store, &state.costs)?))).await
}

async fn run(
    _: Authorized,
    State(state): State<AppState>,
    Path(run): Path<String>,
) -> Result<Json<Value>, Error> {
    let read_only = state.settings.read_only;
    of_run(&state, run, move |store, run_id| {
        Ok(api::run(store, run_id, read_only)?)
    })
    .await
}

async fn board(
    _: Authorized,
    State(state): State<AppState>,
    Path(run): Path<String>,
) -> Result<Json<Value>, Error> {
    of_run(&state, run, |store, run_id| Ok(api::board(store, run_id)?)).await
}

async fn report(
    _: Authorized,
    State(state): State<AppState>,
    Path(run): Path<String>,
) -> Result<Json<Value>, Error> {
    of_run(&state, run, |store, run_id| Ok(api::report(store, run_id)?)).await
}

#[derive(Deserialize)]
struct LogQuery {
    instance: String,
    attempt: u32,
    #[serde(default = "stdout")]
    stream: String,
    offset: Option<u64>,
}

fn stdout() -> String {
    "stdout".into()
}

async fn log(
    _: Authorized,
    State(state): State<AppState>,
    Path(run): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<Value>, Error> {
    of_run(&state, run, move |store, run_id| {
        api::log_tail(store, run_id, &q.instance, q.attempt, &q.stream, q.offset)
    })
    .await
}

#[derive(Deserialize)]
struct CostQuery {
    since: Option<String>,
}

async fn costs(
    _: Authorized,
    State(state): State<AppState>,
    Query(q): Query<CostQuery>,
) -> Result<Json<Value>, Error> {
    let store = state.settings.store.clone();
    blocking(move || {
        let since = q
            .since
            .filter(|s| !s.is_empty())
            .map(|s| crate::query::cost::parse_since(&s, std::time::SystemTime::now()))
            .transpose()
            .map_err(|e| Error::BadRequest(e.to_string()))?;
        Ok(Json(api::costs(&store, since.as_deref())?))
    })
    .await
}
