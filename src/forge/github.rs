//! The GitHub REST API (api.github.com, or GitHub Enterprise's `/api/v3`): issues, their
//! comments, and pull requests.

use serde_json::{json, Value};

use super::http::{escape, Auth, Client, Method, Token};
use super::issue::Comment;
use super::{labels, shape, text, Api, Error, Issue, Kind, Proposal, Request};

pub struct GitHub {
    api: String,
    client: Client,
}

impl GitHub {
    pub fn new(api: String, token: Token) -> GitHub {
        let headers = vec![
            ("accept", "application/vnd.github+json"),
            ("x-github-api-version", "2022-11-28"),
        ];
        GitHub {
            client: Client::new(&api, token, Auth::Bearer, headers),
            api,
        }
    }

    fn repo_url(&self, project: &str) -> String {
        let (owner, repo) = project.split_once('/').unwrap_or((project, ""));
        format!("{}/repos/{}/{}", self.api, escape(owner), escape(repo))
    }
}

fn request(v: &Value, method: &'static str, url: &str) -> Result<Request, Error> {
    let number = v
        .get("number")
        .and_then(Value::as_u64)
        .ok_or_else(|| shape(method, url, "no pull request number"))?;
    Ok(Request {
        number,
        url: super::clean_line(text(v, "html_url"), 2048),
    })
}

impl Api for GitHub {
    fn kind(&self) -> Kind {
        Kind::Github
    }

    fn issue(&self, project: &str, number: u64) -> Result<Issue, Error> {
        let url = format!("{}/issues/{number}", self.repo_url(project));
        let v = self.client.send(Method::Get, &url, None)?;
        if !v.is_object() {
            return Err(shape("GET", &url, "not an issue"));
        }
        let labels = labels(&v);
        let comments_url = format!("{url}/comments?per_page={}", super::issue::MAX_COMMENTS);
        let comments = match v.get("comments").and_then(Value::as_u64) {
            Some(0) => Vec::new(),
            _ => self
                .client
                .send(Method::Get, &comments_url, None)?
                .as_array()
                .ok_or_else(|| shape("GET", &comments_url, "not a list of comments"))?
                .iter()
                .map(|c| Comment {
                    author: c
                        .get("user")
                        .map(|u| text(u, "login"))
                        .unwrap_or_default()
                        .to_string(),
                    body: text(c, "body").to_string(),
                })
                .collect(),
        };
        Ok(Issue::new(
            text(&v, "title"),
            text(&v, "body"),
            labels,
            comments,
            text(&v, "html_url"),
        ))
    }

    fn comment(&self, project: &str, number: u64, body: &str) -> Result<String, Error> {
        let url = format!("{}/issues/{number}/comments", self.repo_url(project));
        let v = self
            .client
            .send(Method::Post, &url, Some(&json!({ "body": body })))?;
        Ok(super::clean_line(text(&v, "html_url"), 2048))
    }

    fn find_request(&self, project: &str, branch: &str) -> Result<Option<Request>, Error> {
        let owner = project.split('/').next().unwrap_or_default();
        let url = format!(
            "{}/pulls?state=open&head={}",
            self.repo_url(project),
            escape(&format!("{owner}:{branch}"))
        );
        let v = self.client.send(Method::Get, &url, None)?;
        let list = v
            .as_array()
            .ok_or_else(|| shape("GET", &url, "not a list of pull requests"))?;
        list.first().map(|p| request(p, "GET", &url)).transpose()
    }

    fn open_request(&self, project: &str, p: &Proposal) -> Result<Request, Error> {
        let url = format!("{}/pulls", self.repo_url(project));
        let body = json!({
            "title": p.title, "body": p.body, "head": p.head, "base": p.base, "draft": p.draft,
        });
        let v = self.client.send(Method::Post, &url, Some(&body))?;
        request(&v, "POST", &url)
    }

    fn update_request(&self, project: &str, number: u64, p: &Proposal) -> Result<Request, Error> {
        let url = format!("{}/pulls/{number}", self.repo_url(project));
        let body = json!({ "title": p.title, "body": p.body, "base": p.base });
        let v = self.client.send(Method::Patch, &url, Some(&body))?;
        request(&v, "PATCH", &url)
    }
}
