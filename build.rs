//! Embeds every file under `missions/` and `policies/` into the binary, so that built-in
//! missions (and their templates) and built-in policy packs resolve without the source tree.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    embed("missions", "builtin_missions.rs");
    embed("policies", "builtin_policies.rs");
    link_options();
}

/// Linker options for the `spectacular` binary only (not the library, tests or benchmarks).
///
/// Linux with glibc: the binary's relative relocations (every pointer in its static data:
/// vtables, string slices in tables, panic locations; about 100,000 of them) are packed into
/// a bitmap (`DT_RELR`) instead of 24 bytes each, so the loader reads a few kilobytes at
/// start instead of megabytes, and the file is smaller. GNU ld 2.38+, lld 15+ and mold pack
/// them; older linkers ignore the option with a warning. The binary then needs glibc 2.36 or
/// later where it runs (an older one refuses it naming `GLIBC_ABI_DT_RELR`). macOS's linker
/// packs its fixups already.
fn link_options() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
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
