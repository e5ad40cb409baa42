//! The GitLab REST API (`/api/v4`, gitlab.com or self-hosted): issues, their notes, and
//! merge requests. Projects are named by their full path (`group/sub/project`), escaped.

use serde_json::{json, Value};

use super::http::{escape, Auth, Client, Method, Token};
use super::issue::Comment;
use super::{labels, shape, text, Api, Error, Issue, Kind, Proposal, Request};

pub struct GitLab {
    api: String,
    client: Client,
}

impl GitLab {
    pub fn new(api: String, token: Token) -> GitLab {
        GitLab {
            client: Client::new(
                &api,
                token,
                Auth::PrivateToken,
                vec![("accept", "application/json")],
            ),
            api,
        }
    }

    fn project_url(&self, project: &str) -> String {
        format!("{}/projects/{}", self.api, escape(project))
    }
}

fn request(v: &Value, method: &'static str, url: &str) -> Result<Request, Error> {
    let number = v
        .get("iid")
        .and_then(Value::as_u64)
        .ok_or_else(|| shape(method, url, "no merge request iid"))?;
    Ok(Request {
        number,
        url: super::clean_line(text(v, "web_url"), 2048),
    })
}

impl Api for GitLab {
    fn kind(&self) -> Kind {
        Kind::Gitlab
    }

    fn issue(&self, project: &str, number: u64) -> Result<Issue, Error> {
        let url = format!("{}/issues/{number}", self.project_url(project));
        let v = self.client.send(Method::Get, &url, None)?;
        if !v.is_object() {
            return Err(shape("GET", &url, "not an issue"));
        }
        let labels = labels(&v);
        let notes_url = format!(
            "{url}/notes?sort=asc&order_by=created_at&per_page={}",
            super::issue::MAX_COMMENTS
        );
        let notes = self.client.send(Method::Get, &notes_url, None)?;
        let comments = notes
            .as_array()
            .ok_or_else(|| shape("GET", &notes_url, "not a list of notes"))?
            .iter()
            // System notes ("added label …") are not what people wrote.
            .filter(|n| !n.get("system").and_then(Value::as_bool).unwrap_or(false))
            .map(|n| Comment {
                author: n
                    .get("author")
                    .map(|a| text(a, "username"))
                    .unwrap_or_default()
                    .to_string(),
                body: text(n, "body").to_string(),
            })
            .collect();
        Ok(Issue::new(
            text(&v, "title"),
            text(&v, "description"),
            labels,
            comments,
            text(&v, "web_url"),
        ))
    }

    fn comment(&self, project: &str, number: u64, body: &str) -> Result<String, Error> {
        let url = format!("{}/issues/{number}/notes", self.project_url(project));
        let v = self
            .client
            .send(Method::Post, &url, Some(&json!({ "body": body })))?;
        let id = v.get("id").and_then(Value::as_u64).unwrap_or_default();
        // GitLab answers the note, not its address: the anchor on the issue's page.
        Ok(format!("#note_{id}"))
    }

    fn find_request(&self, project: &str, branch: &str) -> Result<Option<Request>, Error> {
        let url = format!(
            "{}/merge_requests?state=opened&source_branch={}",
            self.project_url(project),
            escape(branch)
        );
        let v = self.client.send(Method::Get, &url, None)?;
        let list = v
            .as_array()
            .ok_or_else(|| shape("GET", &url, "not a list of merge requests"))?;
        list.first().map(|m| request(m, "GET", &url)).transpose()
    }

    fn open_request(&self, project: &str, p: &Proposal) -> Result<Request, Error> {
        let url = format!("{}/merge_requests", self.project_url(project));
        let title = if p.draft {
            format!("Draft: {}", p.title)
        } else {
            p.title.clone()
        };
        let body = json!({
            "title": title, "description": p.body, "source_branch": p.head,
            "target_branch": p.base, "remove_source_branch": true,
        });
        let v = self.client.send(Method::Post, &url, Some(&body))?;
        request(&v, "POST", &url)
    }

    fn update_request(&self, project: &str, number: u64, p: &Proposal) -> Result<Request, Error> {
        let url = format!("{}/merge_requests/{number}", self.project_url(project));
        let body = json!({ "description": p.body, "target_branch": p.base });
        let v = self.client.send(Method::Put, &url, Some(&body))?;
        request(&v, "PUT", &url)
    }
}
