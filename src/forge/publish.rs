//! A run and its forge: the issue it came from (`<run>/issue.json`, written when it starts),
//! the issue fetched into a spec file (`<store>/issues/<forge>/<project>/<n>.md`), the
//! comments on the issue (the checked plan, the run's end) and the pull or merge request of
//! its integration branch, pushed to the configured remote. What was done is recorded in the
//! run's log (`issue.commented`, `pr.opened`, `pr.updated`) after the forge answered, and
//! read back before acting, so that nothing is commented twice and a run resumed or reworked
//! updates its request instead of opening another.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Api, Error, ForgeConfig, Issue, IssueRef, Kind, Proposal, PullRequestConfig};
use crate::record::event::{EventData, IssueCommented, PullRequest};
use crate::record::{Event, RunLog, Store};

/// The most bytes of a comment or a request's body (GitHub takes 65,536 characters).
pub const MAX_BODY: usize = 60_000;

/// What can stop an issue from becoming a spec, or a run from being published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Forge(#[from] Error),
    #[error("the text of {issue} is {bytes} bytes; a spec is at most {max} bytes\n  help: shorten the issue, or copy the part to implement into a spec file and run that")]
    TooLarge {
        issue: String,
        bytes: usize,
        max: usize,
    },
    #[error("failed to write `{}`: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("nothing is pushed unless the project's configuration says so\n  help: add to .spectacular/config.yaml:\n    pull_requests:\n      remote: origin")]
    NotConfigured,
    #[error("run {run} {how}: a pull request is opened for a run that succeeded\n  help: `spectacular status {run}` shows what happened")]
    NotSucceeded { run: String, how: &'static str },
    #[error("run {run} did not come from an issue, so there is no project to open the pull request in\n  help: set `pull_requests.project` in .spectacular/config.yaml (`github:owner/repo` or `gitlab:group/project`)")]
    NoProject { run: String },
    #[error("`pull_requests.project` is `{0}`, not `github:owner/repo` or `gitlab:group/project`")]
    BadProject(String),
    #[error(
        "run {run} has no integration branch to push: its mission does not merge work on branches"
    )]
    NoBranch { run: String },
    #[error("run {run} started from a detached HEAD, so there is no branch to merge into\n  help: set `pull_requests.base` in .spectacular/config.yaml")]
    NoBase { run: String },
    #[error("pushing `{branch}` to `{remote}` failed: {message}\n  help: check that the remote exists and that you may push to it (`git push {remote} {branch}`)")]
    Push {
        remote: String,
        branch: String,
        message: String,
    },
    #[error("run {run} is running; try again when it has stopped")]
    Running { run: String },
    #[error(transparent)]
    Record(#[from] crate::record::Error),
}

/// The issue a run came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Link {
    pub issue: IssueRef,
    pub title: String,
    pub url: String,
}

const LINK_FILE: &str = "issue.json";

/// Remember which issue `run_dir`'s run came from (whole file, or nothing).
pub fn write_link(run_dir: &Path, link: &Link) -> Result<(), PublishError> {
    let path = run_dir.join(LINK_FILE);
    let temp = run_dir.join("issue.json.tmp");
    let text = serde_json::to_string_pretty(link).unwrap_or_default();
    std::fs::write(&temp, text)
        .and_then(|()| std::fs::rename(&temp, &path))
        .map_err(|source| PublishError::Io { path, source })
}

/// The issue a run came from, if it came from one.
pub fn read_link(run_dir: &Path) -> Option<Link> {
    let text = std::fs::read(run_dir.join(LINK_FILE)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Fetch `reference` and write it as a spec below `<store>/issues/`, whole or not at all.
/// The path of the spec and the issue.
pub fn fetch_spec(
    store_dir: &Path,
    api: &dyn Api,
    reference: &IssueRef,
) -> Result<(PathBuf, Issue), PublishError> {
    let issue = api.issue(&reference.project, reference.number)?;
    let text = issue.to_spec(reference);
    if text.len() > crate::spec::MAX_SPEC_BYTES {
        return Err(PublishError::TooLarge {
            issue: reference.to_string(),
            bytes: text.len(),
            max: crate::spec::MAX_SPEC_BYTES,
        });
    }
    let parts = reference.file_parts();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let dir = store_dir.join("issues");
    let path = crate::record::store::join_under(&dir, &parts).map_err(|e| PublishError::Io {
        path: dir.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PublishError::Io { path, source }
    };
    let parent = path.parent().unwrap_or(&dir);
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let temp = path.with_extension("md.tmp");
    std::fs::write(&temp, &text).map_err(io(&temp))?;
    std::fs::rename(&temp, &path).map_err(io(&path))?;
    Ok((path, issue))
}

/// Comment on the run's issue what it has not commented yet: the checked plan, and how the
/// run ended (each time it ends). What was commented, as lines to show.
pub fn comment(
    store: &Store,
    run_id: &str,
    config: &ForgeConfig,
    connect: &dyn Fn(Kind) -> Result<Box<dyn Api>, Error>,
) -> Result<Vec<String>, PublishError> {
    let Some(link) = read_link(&store.run_dir(run_id)) else {
        return Ok(Vec::new());
    };
    if !config.comment {
        return Ok(Vec::new());
    }
    let events = store.read_events(run_id)?;
    let mut todo = Vec::new();
    let commented = |what: &str, seq: Option<u64>| {
        events.iter().any(|e| {
            matches!(&e.data, EventData::IssueCommented(c) if c.what == what && c.ended_seq == seq)
        })
    };
    if let Some(plan) = plan_comment(run_id, &events) {
        if !commented("plan", None) {
            todo.push(("plan", None, plan));
        }
    }
    if let Some(end) = events.iter().rev().find(|e| e.data.is_terminal()) {
        if !commented("end", Some(end.seq)) {
            todo.push(("end", Some(end.seq), end_comment(run_id, &events, end)));
        }
    }
    if todo.is_empty() {
        return Ok(Vec::new());
    }
    let api = connect(link.issue.kind)?;
    let mut lines = Vec::new();
    for (what, ended_seq, body) in todo {
        let url = api.comment(&link.issue.project, link.issue.number, &body)?;
        let url = match url.strip_prefix('#') {
            Some(anchor) => format!("{}#{anchor}", link.url),
            None => url,
        };
        record(
            store,
            run_id,
            EventData::IssueCommented(IssueCommented {
                issue: link.issue.to_string(),
                what: what.to_string(),
                ended_seq,
                url,
            }),
        )?;
        let what = if what == "plan" {
            "the plan"
        } else {
            "how the run ended"
        };
        lines.push(format!("commented {what} on {}", link.issue));
    }
    Ok(lines)
}

/// The checked plan as a comment, when the run has one.
fn plan_comment(run_id: &str, events: &[Event]) -> Option<String> {
    let report = events.iter().rev().find_map(|e| match &e.data {
        EventData::AttemptSucceeded(d) => d
            .values
            .get(crate::tasks::REPORT_VALUE)
            .and_then(|v| serde_json::from_value::<crate::tasks::PlanReport>(v.clone()).ok()),
        _ => None,
    })?;
    let mut out = format!(
        "**Spectacular** planned run `{run_id}`: {} work packages.\n\n",
        report.work_packages.len()
    );
    for wp in &report.work_packages {
        out.push_str(&format!(
            "- `{}` {}\n",
            wp.id.replace('`', "'"),
            super::clean_line(&wp.title, 200)
        ));
    }
    out.push('\n');
    out.push_str(&crate::tasks::render::traceability_markdown(&report));
    Some(bounded(&crate::tasks::render::no_html(&out)))
}

/// How the run ended, with its report folded away.
fn end_comment(run_id: &str, events: &[Event], end: &Event) -> String {
    let how = match end.data {
        EventData::RunSucceeded(_) => "succeeded",
        EventData::RunFailed(_) => "failed",
        _ => "was canceled",
    };
    let report = crate::query::report::markdown(&crate::query::report::report(events));
    let out = format!(
        "**Spectacular** run `{run_id}` {how}.\n\n<details><summary>Report</summary>\n\n{}\n\n</details>\n",
        crate::tasks::render::no_html(&report)
    );
    bounded(&out)
}

/// `text` within [`MAX_BODY`], saying so when cut.
fn bounded(text: &str) -> String {
    if text.len() <= MAX_BODY {
        return text.to_string();
    }
    let mut cut = MAX_BODY - 200;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}\n\n… (cut: the whole text is in the run's report, `spectacular report`)\n",
        &text[..cut]
    )
}

/// Append `data` to the log of a run that is not running.
fn record(store: &Store, run_id: &str, data: EventData) -> Result<(), PublishError> {
    let (mut log, _) = match RunLog::open(store, run_id) {
        Err(crate::record::Error::Locked { .. }) => {
            return Err(PublishError::Running {
                run: run_id.to_string(),
            })
        }
        other => other?,
    };
    let causation = log.last_event_id().map(str::to_string);
    log.append(data, &crate::execute::inbox::actor(), causation.as_deref());
    log.commit()?;
    drop(log);
    if let Ok(mut projection) = store.projection() {
        let _ = projection.apply(&[]);
    }
    Ok(())
}

/// What a request was opened or updated for.
pub struct Published {
    pub kind: Kind,
    pub request: super::Request,
    pub updated: bool,
}

/// Push the integration branch of run `run_id` (it succeeded) to the configured remote, and
/// open its pull or merge request, or update the one it has.
pub fn pull_request(
    store: &Store,
    repo: &Path,
    run_id: &str,
    settings: &PullRequestConfig,
    connect: &dyn Fn(Kind) -> Result<Box<dyn Api>, Error>,
) -> Result<Published, PublishError> {
    let events = store.read_events(run_id)?;
    succeeded(run_id, &events)?;
    let link = read_link(&store.run_dir(run_id));
    let (kind, project) = target(run_id, settings, link.as_ref())?;
    let base = events.iter().find_map(|e| match &e.data {
        EventData::RunStarted(s) => s.git_base.as_ref().map(|b| b.branch.clone()),
        _ => None,
    });
    let branch = crate::git::integration_branch(run_id);
    let Ok(head) = crate::git::ops::commit_of(repo, &branch) else {
        return Err(PublishError::NoBranch {
            run: run_id.to_string(),
        });
    };
    let base = match (&settings.base, base) {
        (Some(b), _) => b.clone(),
        (None, Some(b)) if b != "HEAD" => b,
        (None, _) => {
            return Err(PublishError::NoBase {
                run: run_id.to_string(),
            })
        }
    };
    push(repo, &settings.remote, &branch)?;
    let proposal = Proposal {
        title: title(run_id, link.as_ref()),
        body: body(&events, link.as_ref(), &project),
        head: branch.clone(),
        base: base.clone(),
        draft: settings.draft,
    };
    let api = connect(kind)?;
    let known = events.iter().rev().find_map(|e| match &e.data {
        EventData::PrOpened(p) | EventData::PrUpdated(p) => Some(p.number),
        _ => None,
    });
    let known = match known {
        Some(n) => Some(n),
        None => api.find_request(&project, &branch)?.map(|r| r.number),
    };
    let (request, updated) = match known {
        Some(n) => (api.update_request(&project, n, &proposal)?, true),
        None => (api.open_request(&project, &proposal)?, false),
    };
    let recorded = PullRequest {
        project: format!("{}:{project}", kind.name()),
        number: request.number,
        url: request.url.clone(),
        branch,
        head,
        base,
        issue: link.as_ref().map(|l| l.issue.to_string()),
    };
    let data = if updated {
        EventData::PrUpdated(recorded)
    } else {
        EventData::PrOpened(recorded)
    };
    record(store, run_id, data)?;
    Ok(Published {
        kind,
        request,
        updated,
    })
}

fn succeeded(run_id: &str, events: &[Event]) -> Result<(), PublishError> {
    let ended = events.iter().rev().find(|e| e.data.is_terminal());
    let how = match ended.map(|e| &e.data) {
        Some(EventData::RunSucceeded(_)) => return Ok(()),
        Some(EventData::RunFailed(_)) => "failed",
        Some(_) => "was canceled",
        None => "has not finished",
    };
    Err(PublishError::NotSucceeded {
        run: run_id.to_string(),
        how,
    })
}

/// Where the request goes: `pull_requests.project`, else the issue's project.
fn target(
    run_id: &str,
    settings: &PullRequestConfig,
    link: Option<&Link>,
) -> Result<(Kind, String), PublishError> {
    if let Some(project) = &settings.project {
        let parsed = IssueRef::parse(&format!("{project}#1"));
        return match parsed {
            Some(Ok(r)) => Ok((r.kind, r.project)),
            _ => Err(PublishError::BadProject(super::clean_line(project, 200))),
        };
    }
    match link {
        Some(l) => Ok((l.issue.kind, l.issue.project.clone())),
        None => Err(PublishError::NoProject {
            run: run_id.to_string(),
        }),
    }
}

fn title(run_id: &str, link: Option<&Link>) -> String {
    match link {
        Some(l) if !l.title.is_empty() => super::clean_line(&l.title, 250),
        _ => format!("Spectacular run {run_id}"),
    }
}

/// The run's report, linked to its issue.
fn body(events: &[Event], link: Option<&Link>, project: &str) -> String {
    let report = crate::query::report::markdown(&crate::query::report::report(events));
    let mut out = String::new();
    if let Some(l) = link {
        out.push_str(&format!("{}\n\n", l.issue.closes(project)));
    }
    out.push_str(&crate::tasks::render::no_html(&report));
    bounded(&out)
}

/// `git push --force <remote> <branch>`: the branch is the run's own
/// (`spectacular/<run>`), so a rework that rewrote it replaces what was pushed. Git runs with
/// the user's own configuration and credentials (this is the user's push, asked for in their
/// configuration), never prompting.
fn push(repo: &Path, remote: &str, branch: &str) -> Result<(), PublishError> {
    let fail = |message: String| PublishError::Push {
        remote: remote.to_string(),
        branch: branch.to_string(),
        message,
    };
    if remote.starts_with('-') || remote.contains(char::is_whitespace) {
        return Err(fail("that is not a remote's name or URL".into()));
    }
    let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["push", "--force", "--quiet", "--", remote, &refspec])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot run git: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(fail(without_credentials(&super::clean_line(&stderr, 500))))
}

/// `text` with the user and password of any URL in it removed.
fn without_credentials(text: &str) -> String {
    static URL_USER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@").expect("a regex")
    });
    URL_USER.replace_all(text, "$scheme").into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_errors_lose_credentials() {
        assert_eq!(
            without_credentials("fatal: https://x:ghp_secret@github.com/o/r denied"),
            "fatal: https://github.com/o/r denied"
        );
    }

    #[test]
    fn long_bodies_are_cut_and_say_so() {
        let text = "é".repeat(MAX_BODY);
        let cut = bounded(&text);
        assert!(cut.len() <= MAX_BODY);
        assert!(cut.ends_with("`spectacular report`)\n"));
    }
}
