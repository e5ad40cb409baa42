//! Pinning a mission to a run: the digest of the mission file and of every file it references
//! (prompt templates, output schemas), so that resume can refuse silent drift.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::model::{Mission, PhaseKind};

pub fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::from("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    out
}

/// The files a mission references, relative to its directory.
pub fn referenced_files(mission: &Mission) -> Vec<String> {
    let mut files = Vec::new();
    for phase in mission.phases.values() {
        if let PhaseKind::Agent {
            prompt: Some(prompt),
            ..
        } = &phase.kind
        {
            files.push(prompt.clone());
        }
        for output in phase.outputs.values() {
            if let Some(schema) = &output.schema {
                files.push(schema.clone());
            }
        }
    }
    // The mission's own agents are part of it.
    if mission.base.read("agents.yaml").is_ok() {
        files.push("agents.yaml".to_string());
    }
    files.sort();
    files.dedup();
    files
}

/// (overall digest, per-file digests) of a mission as it is now.
pub fn digest(mission: &Mission) -> (String, BTreeMap<String, String>) {
    let mut files = BTreeMap::new();
    let mut all = Sha256::new();
    all.update(mission.source_text.as_bytes());
    for file in referenced_files(mission) {
        let text = mission.base.read(&file).unwrap_or_default();
        let d = sha256(text.as_bytes());
        all.update(file.as_bytes());
        all.update(d.as_bytes());
        files.insert(file, d);
    }
    let digest = all.finalize();
    let mut out = String::from("sha256:");
    for byte in digest {
        out.push_str(&format!("{byte:02x}"));
    }
    (out, files)
}
