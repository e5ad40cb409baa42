//! The HTTP client of the control plane (blocking, ureq): batches, budgets and views.

use std::time::Duration;

use serde::de::DeserializeOwned;

use super::{Batch, BatchResponse, BudgetAnswer, ProblemKind};

/// The most bytes of an answer read.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Why a request to the control plane did not get its answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the control plane at {url}: {message}\n  help: is `spectacular serve` running there? (`sync.url` in `.spectacular/config.yaml`)")]
    Unreachable { url: String, message: String },
    #[error("no token: `{0}` is not set\n  help: export {0}=<the token `spectacular serve --token` was given>")]
    NoToken(String),
    #[error("the control plane at {url} refused the token (HTTP {status}): {message}\n  help: set {token_env} to the token `spectacular serve --token` was given")]
    Token {
        url: String,
        status: u16,
        message: String,
        token_env: String,
    },
    #[error("the control plane at {url} failed (HTTP {status}): {message}")]
    Server {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the control plane at {url} refused the request (HTTP {status}): {message}")]
    Request {
        url: String,
        status: u16,
        message: String,
    },
    #[error("the control plane at {url} answered something unreadable: {message}")]
    Protocol { url: String, message: String },
}

impl ClientError {
    pub fn kind(&self) -> ProblemKind {
        match self {
            ClientError::Unreachable { .. } => ProblemKind::Unreachable,
            ClientError::NoToken(_) | ClientError::Token { .. } => ProblemKind::Token,
            ClientError::Server { .. } | ClientError::Protocol { .. } => ProblemKind::Server,
            ClientError::Request { .. } => ProblemKind::Request,
        }
    }
}

/// A client of one control plane.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: String,
    token_env: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of `base` (`http://host:port`), with the token read from `token_env`.
    pub fn new(
        base: &str,
        token: Option<&str>,
        token_env: &str,
        timeout: Duration,
    ) -> Result<Client, ClientError> {
        let Some(token) = token else {
            return Err(ClientError::NoToken(token_env.to_string()));
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout.min(Duration::from_secs(3))))
            .timeout_global(Some(timeout))
            .proxy(None)
            .build();
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
            token_env: token_env.to_string(),
            agent: config.into(),
        })
    }

    /// The client of the project's `sync:` settings.
    pub fn of(settings: &super::Settings, timeout: Duration) -> Result<Client, ClientError> {
        Client::new(
            &settings.url,
            settings.token.as_deref(),
            &settings.token_env,
            timeout,
        )
    }

    /// Post a batch; the per-event answers, in the batch's order.
    pub fn post_batch(&self, batch: &Batch) -> Result<BatchResponse, ClientError> {
        let url = format!("{}/v1/events", self.base);
        let body = serde_json::to_vec(batch).unwrap_or_default();
        let response = self
            .agent
            .post(&url)
            .header("authorization", &format!("Bearer {}", self.token))
            .header("content-type", "application/json")
            .send(&body[..]);
        let answer: BatchResponse = self.answer(&url, response)?;
        if answer.results.len() != batch.events.len() {
            return Err(ClientError::Protocol {
                url,
                message: format!(
                    "{} results for {} events",
                    answer.results.len(),
                    batch.events.len()
                ),
            });
        }
        Ok(answer)
    }

    /// Where `project` stands against its fleet budget this month.
    pub fn budget(&self, project: &str) -> Result<BudgetAnswer, ClientError> {
        self.get(&format!("/v1/budget/{project}"), &[])
    }

    /// `GET path?query` as JSON.
    pub fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .agent
            .get(&url)
            .header("authorization", &format!("Bearer {}", self.token));
        for (k, v) in query {
            request = request.query(*k, *v);
        }
        self.answer(&url, request.call())
    }

    fn answer<T: DeserializeOwned>(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        let url = url.to_string();
        let mut response = response.map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_string()
            .map_err(|e| ClientError::Unreachable {
                url: url.clone(),
                message: e.to_string(),
            })?;
        if (200..300).contains(&status) {
            return serde_json::from_str(&text).map_err(|e| ClientError::Protocol {
                url,
                message: e.to_string(),
            });
        }
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| text.chars().take(300).collect());
        let message = super::one_line(&message);
        Err(match status {
            401 | 403 => ClientError::Token {
                url,
                status,
                message,
                token_env: self.token_env.clone(),
            },
            400..=499 => ClientError::Request {
                url,
                status,
                message,
            },
            _ => ClientError::Server {
                url,
                status,
                message,
            },
        })
    }
}
