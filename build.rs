//! Embeds every file under `missions/` and `policies/` into the binary, so that built-in
//! missions (and their templates) and built-in policy packs resolve without the source tree.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    embed("missions", "builtin_missions.rs");
    embed("policies", "builtin_policies.rs");
}

/// Write `$OUT_DIR/<out_name>` with `FILES`: (path relative to `<dir>/`, contents), sorted.
fn embed(dir: &str, out_name: &str) {
    println!("cargo:rerun-if-changed={dir}");
    // At run time, not `env!`: a build script compiled in another checkout (a copied
    // `target/`) must still read this one.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join(dir);
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut out = format!("/// Files under `{dir}/`: (path relative to `{dir}/`, contents).\n");
    out.push_str("pub static FILES: &[(&str, &str)] = &[\n");
    for (rel, abs) in files {
        let _ = writeln!(out, "    ({rel:?}, include_str!({abs:?})),");
    }
    out.push_str("];\n");
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join(out_name);
    std::fs::write(dest, out).unwrap_or_else(|e| panic!("write {out_name}: {e}"));
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            collect(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, path.to_string_lossy().into_owned()));
        }
    }
}
