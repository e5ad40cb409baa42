//! The resources: the store's runs (`spectacular://runs`), each run's status
//! (`spectacular://runs/{run}`), its events as JSON lines (`…/events`) and its report
//! (`…/report`, Markdown; `…/report.json`). Each is what the CLI command prints.

use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};

use super::command::Cli;
use super::Error;
use crate::record::Store;

/// The most runs listed as resources (newest first); the rest are reachable by template.
const LISTED_RUNS: usize = 50;
const RUNS: &str = "spectacular://runs";

pub fn templates() -> Vec<ResourceTemplate> {
    let template = |uri: &str, name: &str, description: &str, mime: &str| {
        let mut t = ResourceTemplate::new(uri, name);
        t.description = Some(description.into());
        t.mime_type = Some(mime.into());
        t
    };
    vec![
        template(
            "spectacular://runs/{run}",
            "run status",
            "The phases of a run (`spectacular status --json`); `last` is the latest run.",
            "application/json",
        ),
        template(
            "spectacular://runs/{run}/events",
            "run events",
            "The events of a run, as JSON lines (`spectacular events --json`).",
            "application/x-ndjson",
        ),
        template(
            "spectacular://runs/{run}/report",
            "run report",
            "What a run did, as Markdown (`spectacular report`).",
            "text/markdown",
        ),
        template(
            "spectacular://runs/{run}/report.json",
            "run report (JSON)",
            "What a run did (`spectacular report --json`).",
            "application/json",
        ),
    ]
}

pub fn list(store: &Store) -> Result<Vec<Resource>, Error> {
    let mut ids = if store.runs_dir().is_dir() {
        store.run_ids()?
    } else {
        Vec::new()
    };
    // Run ids are ULIDs: newest last in name order.
    ids.sort();
    ids.reverse();
    let mut out = vec![resource(
        RUNS,
        "runs",
        "The runs in the store",
        "application/json",
    )];
    for id in ids.into_iter().take(LISTED_RUNS) {
        let base = format!("{RUNS}/{id}");
        out.push(resource(
            &base,
            &format!("run {id}"),
            "Its phases",
            "application/json",
        ));
        out.push(resource(
            &format!("{base}/events"),
            &format!("run {id} events"),
            "Its events",
            "application/x-ndjson",
        ));
        out.push(resource(
            &format!("{base}/report"),
            &format!("run {id} report"),
            "Its report",
            "text/markdown",
        ));
    }
    Ok(out)
}

fn resource(uri: &str, name: &str, description: &str, mime: &str) -> Resource {
    Resource::new(uri, name)
        .with_description(description)
        .with_mime_type(mime)
}

/// The command that prints a resource, and its MIME type.
fn command_of(uri: &str) -> Result<(Vec<String>, &'static str), Error> {
    let unknown = || {
        Error::Refused(format!(
        "no resource `{uri}`: the resources are `{RUNS}` and `{RUNS}/{{run}}` with `/events`, `/report` or `/report.json`"
    ))
    };
    let Some(rest) = uri.strip_prefix(RUNS) else {
        return Err(unknown());
    };
    if rest.is_empty() || rest == "/" {
        return Ok((vec!["runs".into(), "--json".into()], "application/json"));
    }
    let rest = rest.strip_prefix('/').ok_or_else(unknown)?;
    let (run, what) = rest.split_once('/').unwrap_or((rest, ""));
    // A run is an id, a prefix of one or `last`: letters and digits only.
    if run.is_empty() || run.len() > 26 || !run.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(unknown());
    }
    let run = run.to_string();
    let (head, mime): (&[&str], _) = match what {
        "" => (&["status", "--json"], "application/json"),
        "events" => (&["events", "--json"], "application/x-ndjson"),
        "report" => (&["report"], "text/markdown"),
        "report.json" => (&["report", "--json"], "application/json"),
        _ => return Err(unknown()),
    };
    let mut args: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    args.extend(["--".into(), run]);
    Ok((args, mime))
}

pub async fn read(cli: &Cli, uri: &str) -> Result<ReadResourceResult, Error> {
    let (args, mime) = command_of(uri)?;
    let said = cli.run(&args).await?;
    if !said.success() {
        return Err(super::refusal(&said));
    }
    Ok(ReadResourceResult::new(vec![ResourceContents::text(
        said.stdout,
        uri,
    )
    .with_mime_type(mime)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_map_to_commands_and_nothing_else() {
        let (args, mime) = command_of("spectacular://runs/last/report").unwrap();
        assert_eq!(args, ["report", "--", "last"]);
        assert_eq!(mime, "text/markdown");
        assert_eq!(
            command_of("spectacular://runs").unwrap().0,
            ["runs", "--json"]
        );
        for bad in [
            "spectacular://runs/../x",
            "spectacular://runs/--all",
            "spectacular://runs/last/secrets",
            "file:///etc/passwd",
        ] {
            assert!(command_of(bad).is_err(), "{bad}");
        }
    }
}
