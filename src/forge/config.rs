//! What the project's `config.yaml` says about forges (`forge:`) and pull requests
//! (`pull_requests:`), with the defaults filled in. The sections themselves are declared in
//! `config::project`, which checks them against the config's schema.

use crate::config::project::ProjectConfig;
pub use crate::config::project::PullRequestSection as PullRequestConfig;

use super::{Error, Kind};

/// The forges' settings.
#[derive(Clone, Debug, Default)]
pub struct ForgeConfig {
    pub github_api: Option<String>,
    pub gitlab_api: Option<String>,
    /// Comment the plan and the run's end on the issue.
    pub comment: bool,
}

impl ForgeConfig {
    pub fn from_project(config: &ProjectConfig) -> ForgeConfig {
        let section = config.forge.clone().unwrap_or_default();
        ForgeConfig {
            github_api: section.github.and_then(|g| g.api_url),
            gitlab_api: section.gitlab.and_then(|g| g.api_url),
            comment: section.comment,
        }
    }

    /// The API address of `kind`, without a trailing `/`.
    pub fn api_url(&self, kind: Kind) -> Result<String, Error> {
        let url = match kind {
            Kind::Github => self
                .github_api
                .as_deref()
                .unwrap_or("https://api.github.com"),
            Kind::Gitlab => self
                .gitlab_api
                .as_deref()
                .unwrap_or("https://gitlab.com/api/v4"),
        };
        let url = url.trim().trim_end_matches('/');
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && !url.contains(char::is_whitespace)
            && !url.contains(['?', '#']);
        if !ok {
            return Err(Error::BadApiUrl {
                kind,
                url: super::clean_line(url, 200),
            });
        }
        Ok(url.to_string())
    }
}
