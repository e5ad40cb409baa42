//! The control plane (`spectacular serve`): an HTTP ingest endpoint for the events of many
//! projects, backed by a JetStream stream, and the fleet's views from a SQLite projection of
//! that stream.
//!
//! `POST /v1/events` takes a [`crate::sync::Batch`] with a bearer token and answers each
//! event (`accepted`, `duplicate`, `rejected` with a reason). Events are hostile input: the
//! body, the batch and each event are bounded, each event must decode as an event of this
//! schema with ULID ids, names are checked against [`crate::sync::is_name`] before they
//! become subject tokens, and nothing reaches SQL but bound parameters. Each accepted event
//! is published on `<stream>.events.<project>` with `Nats-Msg-Id = event_id` (JetStream
//! drops a repeat inside its window), and the projection keys events by `event_id` (a repeat
//! after the window is a `duplicate` too). Batches are taken one at a time, so the projection
//! applies the stream in order and catches up from its last sequence when it starts.
//!
//! Views (same token): `GET /v1/cost?by=project|team|agent|model[&month=YYYY-MM]`,
//! `GET /v1/audit[?project=P][&limit=N]`, `GET /v1/budgets`, `GET /v1/budget/{project}`.

mod ingest;
pub mod projection;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::sync::{is_name, BudgetAnswer, MAX_BODY_BYTES};
use projection::{By, Projection};

/// How `spectacular serve` runs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub nats: String,
    pub addr: SocketAddr,
    pub token: String,
    /// The JetStream stream's name (subjects `<stream>.events.<project>`).
    pub stream: String,
    /// Where the projection lives (`fleet.db`).
    pub data: PathBuf,
    /// Monthly fleet budgets in dollars, per project; `*` for every other project.
    pub budgets: BTreeMap<String, f64>,
    /// Delete the projection and rebuild it from the stream first.
    pub rebuild: bool,
}

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach NATS at {url}: {message}\n  help: start a NATS server with JetStream (`nats-server -js`) or give its address with `--nats`")]
    Nats { url: String, message: String },
    #[error("JetStream stream `{stream}`: {message}")]
    Stream { stream: String, message: String },
    #[error("the projection `{}`: {source}", path.display())]
    Projection {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("failed to {action} `{}`: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

struct App {
    token: String,
    js: jetstream::Context,
    stream: String,
    projection: Mutex<Projection>,
    budgets: BTreeMap<String, f64>,
    /// One batch at a time: the projection applies the stream in order.
    ingest: tokio::sync::Mutex<()>,
}

/// A bound control plane, ready to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Arc<App>,
    /// Events the projection applied from the stream when it started.
    pub caught_up: u64,
}

impl Server {
    /// Connect to NATS, make sure the stream exists, open the projection and catch it up
    /// with the stream, then bind the address.
    pub async fn start(settings: Settings) -> Result<Server, Error> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(settings.nats.as_str())
            .await
            .map_err(|e| Error::Nats {
                url: settings.nats.clone(),
                message: e.to_string(),
            })?;
        let js = jetstream::new(client);
        let stream = ingest::stream(&js, &settings.stream).await?;
        std::fs::create_dir_all(&settings.data).map_err(|source| Error::Io {
            action: "create",
            path: settings.data.clone(),
            source,
        })?;
        let db_path = settings.data.join("fleet.db");
        if settings.rebuild {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", db_path.display()));
            }
        }
        let projection_error = |source| Error::Projection {
            path: db_path.clone(),
            source,
        };
        let mut projection = Projection::open(&db_path).map_err(projection_error)?;
        let caught_up = ingest::catch_up(&stream, &mut projection, &settings.stream)
            .await
            .map_err(projection_error)?;
        let listener = tokio::net::TcpListener::bind(settings.addr)
            .await
            .map_err(|source| Error::Bind {
                addr: settings.addr,
                source,
            })?;
        let app = Arc::new(App {
            token: settings.token,
            js,
            stream: settings.stream,
            projection: Mutex::new(projection),
            budgets: settings.budgets,
            ingest: tokio::sync::Mutex::new(()),
        });
        Ok(Server {
            listener,
            app,
            caught_up,
        })
    }

    /// The address it listens on (the port chosen when `--port 0`).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serve until the process ends.
    pub async fn serve(self) -> std::io::Result<()> {
        axum::serve(self.listener, router(self.app)).await
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/v1/events", post(ingest::post_events))
        .route("/v1/cost", get(cost))
        .route("/v1/audit", get(audit))
        .route("/v1/budgets", get(budgets))
        .route("/v1/budget/{project}", get(budget))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// A refused request: its status and what to tell the client (as `{"error": …}`).
pub(crate) struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// A JSON error answer.
fn error(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal(status, message.into())
}

fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    error(status, message).into_response()
}

/// The bearer token, compared in constant time.
fn authorized(app: &App, headers: &HeaderMap) -> Result<(), Refusal> {
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let (a, b) = (given.as_bytes(), app.token.as_bytes());
    let same = a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
    if same {
        Ok(())
    } else if given.is_empty() {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "no bearer token: send `Authorization: Bearer <token>`",
        ))
    } else {
        Err(error(
            StatusCode::UNAUTHORIZED,
            "the bearer token is not this control plane's token",
        ))
    }
}

fn internal(e: impl std::fmt::Display) -> Refusal {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("the projection failed: {e}"),
    )
}

/// `YYYY-MM` now (UTC).
pub fn this_month() -> String {
    crate::record::now_ts().chars().take(7).collect()
}

fn is_month(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 7
        && b[4] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || c.is_ascii_digit())
}

#[derive(Deserialize)]
struct CostQuery {
    by: Option<By>,
    month: Option<String>,
}

async fn cost(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<CostQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = authorized(&app, &headers) {
        return r.into_response();
    }
    let Ok(Query(query)) = query else {
        return error_response(
            StatusCode::BAD_REQUEST,
            "`by` is one of project, team, agent, model; `month` is YYYY-MM",
        );
    };
    if query.month.as_deref().is_some_and(|m| !is_month(m)) {
        return error_response(StatusCode::BAD_REQUEST, "`month` is YYYY-MM (2026-12)");
    }
    let by = query.by.unwrap_or(By::Project);
    let rows = app
        .projection
        .lock()
        .map_err(internal)
        .and_then(|p| p.cost(by, query.month.as_deref()).map_err(internal));
    match rows {
        Ok(rows) => {
            let total: f64 = rows.iter().map(|r| r.usd).sum();
            Json(json!({ "by": by, "month": query.month, "rows": rows, "total_usd": total }))
                .into_response()
        }
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize)]
struct AuditQuery {
    project: Option<String>,
    limit: Option<u32>,
}

async fn audit(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if let Err(r) = authorized(&app, &headers) {
        return r.into_response();
    }
    let Ok(Query(query)) = query else {
        return error_response(StatusCode::BAD_REQUEST, "`limit` is a number");
    };
    if query.project.as_deref().is_some_and(|p| !is_name(p)) {
        return error_response(StatusCode::BAD_REQUEST, "`project` is not a project name");
    }
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let runs = app
        .projection
        .lock()
        .map_err(internal)
        .and_then(|p| p.audit(query.project.as_deref(), limit).map_err(internal));
    match runs {
        Ok(runs) => Json(json!({ "runs": runs })).into_response(),
        Err(r) => r.into_response(),
    }
}

impl App {
    fn limit(&self, project: &str) -> Option<f64> {
        self.budgets
            .get(project)
            .or_else(|| self.budgets.get("*"))
            .copied()
    }

    fn budget_of(
        &self,
        p: &Projection,
        project: &str,
        month: &str,
    ) -> rusqlite::Result<BudgetAnswer> {
        let spent = p.spent(project, month)?;
        let limit = self.limit(project);
        Ok(BudgetAnswer {
            project: project.to_string(),
            month: month.to_string(),
            spent_usd: spent,
            limit_usd: limit,
            over: limit.is_some_and(|l| spent >= l),
        })
    }
}

async fn budget(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    UrlPath(project): UrlPath<String>,
) -> Response {
    if let Err(r) = authorized(&app, &headers) {
        return r.into_response();
    }
    if !is_name(&project) {
        return error_response(StatusCode::BAD_REQUEST, "not a project name");
    }
    let month = this_month();
    let answer = app
        .projection
        .lock()
        .map_err(internal)
        .and_then(|p| app.budget_of(&p, &project, &month).map_err(internal));
    match answer {
        Ok(a) => Json(a).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn budgets(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Err(r) = authorized(&app, &headers) {
        return r.into_response();
    }
    let month = this_month();
    let answers = app.projection.lock().map_err(internal).and_then(|p| {
        let mut names: Vec<String> = p.projects().map_err(internal)?;
        names.extend(app.budgets.keys().filter(|k| *k != "*").cloned());
        names.sort();
        names.dedup();
        names
            .iter()
            .map(|n| app.budget_of(&p, n, &month).map_err(internal))
            .collect::<Result<Vec<_>, _>>()
    });
    match answers {
        Ok(list) => Json(json!({ "month": month, "budgets": list })).into_response(),
        Err(r) => r.into_response(),
    }
}
