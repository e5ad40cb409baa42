use std::path::Path;
use std::process::Command;

use super::*;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The engine's repository with one commit, and a worker's clone of it from a bundle, on
/// branch `wp`: (tempdir, root, clone, start).
fn setup() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    String,
) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q"]);
    std::fs::write(root.join("a.txt"), "a\n").unwrap();
    git(&root, &["add", "."]);
    git(&root, &["commit", "-qm", "base"]);
    git(&root, &["branch", "wp"]);
    let start = git(&root, &["rev-parse", "HEAD"]);
    let file = tmp.path().join("base.bundle");
    create(&root, &file, &["refs/heads/wp"]).unwrap();
    let clone = tmp.path().join("clone");
    std::fs::create_dir_all(&clone).unwrap();
    git(&clone, &["init", "-q"]);
    let bundle = file.display().to_string();
    git(
        &clone,
        &[
            "-c",
            "protocol.file.allow=always",
            "fetch",
            "-q",
            &bundle,
            "refs/heads/wp:refs/heads/wp",
        ],
    );
    git(&clone, &["checkout", "-q", "wp"]);
    (tmp, root, clone, start)
}

fn back(tmp: &Path, clone: &Path, start: &str, revs: &[&str]) -> std::path::PathBuf {
    let file = tmp.join("back.bundle");
    let _ = std::fs::remove_file(&file);
    let mut all = vec![format!("^{start}")];
    all.extend(revs.iter().map(|r| r.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    create(clone, &file, &all).unwrap();
    file
}

const INTO: &str = "refs/spectacular/incoming/run/wp/1";

fn expected(start: &str) -> Expected<'_> {
    Expected {
        name: "refs/heads/wp",
        start,
        into: INTO,
    }
}

#[test]
fn a_package_s_commits_come_back_into_the_engine_s_ref() {
    let (tmp, root, clone, start) = setup();
    std::fs::create_dir_all(clone.join("src")).unwrap();
    std::fs::write(clone.join("src/b.txt"), "b\n").unwrap();
    git(&clone, &["add", "."]);
    git(&clone, &["commit", "-qm", "work"]);
    let tip = git(&clone, &["rev-parse", "HEAD"]);
    let file = back(tmp.path(), &clone, &start, &["refs/heads/wp"]);
    assert_eq!(fetch_checked(&root, &file, expected(&start)).unwrap(), tip);
    assert_eq!(git(&root, &["rev-parse", INTO]), tip);
    // Nothing but the engine's ref: the branch is where it was.
    assert_eq!(git(&root, &["rev-parse", "wp"]), start);
}

#[test]
fn a_bundle_with_another_ref_is_refused() {
    let (tmp, root, clone, start) = setup();
    git(&clone, &["commit", "-q", "--allow-empty", "-m", "work"]);
    git(&clone, &["branch", "main-evil"]);
    let file = back(
        tmp.path(),
        &clone,
        &start,
        &["refs/heads/wp", "refs/heads/main-evil"],
    );
    let e = fetch_checked(&root, &file, expected(&start)).unwrap_err();
    assert!(e.to_string().contains("main-evil"), "{e}");
    assert!(
        e.to_string().contains("only `refs/heads/wp` is accepted"),
        "{e}"
    );
    assert!(git(&root, &["for-each-ref", "refs/spectacular"]).is_empty());
}

#[test]
fn a_tip_not_descending_from_the_start_is_refused() {
    let (tmp, root, clone, start) = setup();
    git(&clone, &["checkout", "-q", "--orphan", "other"]);
    git(
        &clone,
        &["commit", "-q", "--allow-empty", "-m", "elsewhere"],
    );
    git(&clone, &["branch", "-f", "wp", "other"]);
    let file = tmp.path().join("back.bundle");
    create(&clone, &file, &["refs/heads/wp"]).unwrap();
    let e = fetch_checked(&root, &file, expected(&start)).unwrap_err();
    assert!(matches!(e, Error::NotDescending { .. }), "{e}");
    assert!(git(&root, &["for-each-ref", "refs/spectacular"]).is_empty());
}

#[test]
fn history_grafted_from_elsewhere_is_refused() {
    let (tmp, root, clone, start) = setup();
    git(&clone, &["checkout", "-q", "--orphan", "other"]);
    git(
        &clone,
        &["commit", "-q", "--allow-empty", "-m", "elsewhere"],
    );
    git(&clone, &["checkout", "-q", "wp"]);
    git(
        &clone,
        &[
            "merge",
            "-q",
            "--allow-unrelated-histories",
            "-m",
            "graft",
            "other",
        ],
    );
    let file = back(tmp.path(), &clone, &start, &["refs/heads/wp"]);
    let e = fetch_checked(&root, &file, expected(&start)).unwrap_err();
    assert!(matches!(e, Error::Grafted { .. }), "{e}");
}

#[test]
fn a_git_directory_in_any_commit_is_refused() {
    let (tmp, root, clone, start) = setup();
    let blob = {
        let mut c = Command::new("git");
        c.arg("-C")
            .arg(&clone)
            .args(["hash-object", "-w", "--stdin"]);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write as _;
        child.stdin.take().unwrap().write_all(b"[core]\n").unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    let mktree = |input: String| {
        let mut c = Command::new("git");
        c.arg("-C").arg(&clone).arg("mktree");
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write as _;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        String::from_utf8(child.wait_with_output().unwrap().stdout)
            .unwrap()
            .trim()
            .to_string()
    };
    let inner = mktree(format!("100644 blob {blob}\tconfig\n"));
    let tree = mktree(format!("040000 tree {inner}\t.git\n"));
    let commit = git(&clone, &["commit-tree", &tree, "-p", "HEAD", "-m", "evil"]);
    git(&clone, &["update-ref", "refs/heads/wp", &commit]);
    let file = back(tmp.path(), &clone, &start, &["refs/heads/wp"]);
    let e = fetch_checked(&root, &file, expected(&start)).unwrap_err();
    assert!(e.to_string().contains("hasDotgit"), "{e}");
    assert!(git(&root, &["for-each-ref", "refs/spectacular"]).is_empty());
}

#[test]
fn a_link_out_of_the_repository_is_refused() {
    let (tmp, root, clone, start) = setup();
    std::os::unix::fs::symlink("../../etc/passwd", clone.join("out")).unwrap();
    std::fs::create_dir_all(clone.join("d")).unwrap();
    std::os::unix::fs::symlink("../a.txt", clone.join("d/in")).unwrap();
    git(&clone, &["add", "."]);
    git(&clone, &["commit", "-qm", "links"]);
    let file = back(tmp.path(), &clone, &start, &["refs/heads/wp"]);
    let e = fetch_checked(&root, &file, expected(&start)).unwrap_err();
    assert!(
        e.to_string()
            .contains("`out`: a symbolic link pointing out"),
        "{e}"
    );
    assert!(link_inside("d/in", "../a.txt"));
    assert!(!link_inside("d/in", "/etc/passwd"));
}

#[test]
fn a_damaged_or_foreign_file_is_refused_with_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("x.bundle");
    std::fs::write(&file, "not a bundle\n\n").unwrap();
    assert!(matches!(read_header(&file), Err(Error::Header(_))));
    std::fs::write(&file, "# v2 git bundle\n-zz c\n\n").unwrap();
    assert!(matches!(read_header(&file), Err(Error::Header(_))));
    for bad in ["/abs", "a/../b", "a/.GIT/config", ".git. /x", ""] {
        assert!(check_path(bad).is_err(), "{bad}");
    }
    assert!(check_path("src/.github/x").is_ok());
}
