//! Hostile and degenerate input: each ends in a clean diagnostic with the right code — never a
//! panic, a stack overflow or a hang. (No timing assertions; performance lives in benchmarks.)

use spectacular::diag::{render_json, render_text, RenderOptions};

use crate::support::{codes, validate_bytes};

/// The one check of this family: validating `bytes` yields no mission, every diagnostic has
/// `code`, spans stay inside the file, and both renderings work.
fn check(bytes: &[u8], code: &str) {
    let validated = validate_bytes("hostile.yaml", bytes);
    let diagnostics = &validated.diagnostics;
    let found = codes(diagnostics);
    assert!(validated.mission.is_none(), "no mission from hostile input");
    assert!(
        !found.is_empty() && found.iter().all(|c| *c == code),
        "expected only {code}, got {found:?}:\n{}",
        render_text(diagnostics, RenderOptions::default())
    );
    for d in diagnostics.iter() {
        assert_eq!(d.file, "hostile.yaml");
        if let Some(span) = d.span {
            let text = &diagnostics.source(&d.file).expect("source of a span").text;
            let lines = text.lines().count().max(1) as u32;
            assert!(span.line >= 1 && span.line <= lines, "{d:?}");
        }
    }
    let text = render_text(diagnostics, RenderOptions { color: false });
    assert!(text.contains(&format!("[{code}]")), "{text}");
    assert!(render_json(diagnostics).contains(&format!("\"code\": \"{code}\"")));
}

#[test]
fn empty_file() {
    check(b"", "M1003");
}

#[test]
fn only_whitespace() {
    check(b"\n\n   \n\t\n", "M1003");
}

#[test]
fn only_comments() {
    check(b"# mission: x\n# phases: {}\n", "M1003");
}

#[test]
fn byte_order_mark_only() {
    check("\u{feff}".as_bytes(), "M1003");
}

#[test]
fn scalar_document() {
    check(b"just a sentence\n", "M1004");
    check(b"42\n", "M1004");
    check(b"true\n", "M1004");
}

#[test]
fn list_document() {
    check(b"- mission: x\n- phases: {}\n", "M1004");
    check(b"[]\n", "M1004");
}

#[test]
fn not_utf8() {
    check(b"mission: caf\xe9\nphases: {}\n", "M1002");
    check(b"\xff\xfe m\x00i\x00", "M1002");
    // UTF-16 with a byte order mark.
    let utf16: Vec<u8> = "mission: x\n"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    check(&[&[0xff, 0xfe][..], &utf16].concat(), "M1002");
}

#[test]
fn deep_flow_nesting() {
    let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    check(text.as_bytes(), "M1007");
    let text = format!("x: {}", "{a: ".repeat(100_000));
    check(text.as_bytes(), "M1007");
    // Unclosed: the depth limit comes before the parser notices.
    check("[".repeat(100_000).as_bytes(), "M1007");
}

#[test]
fn deep_block_nesting() {
    let mut text = String::new();
    for depth in 0..200 {
        text.push_str(&" ".repeat(depth));
        text.push_str("a:\n");
    }
    check(text.as_bytes(), "M1007");
    let mut text = String::new();
    for depth in 0..200 {
        text.push_str(&" ".repeat(depth * 2));
        text.push_str("-\n");
    }
    check(text.as_bytes(), "M1007");
}

#[test]
fn billion_laughs() {
    let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..10 {
        let p = i - 1;
        let refs = vec![format!("*a{p}"); 10].join(", ");
        text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    text.push_str("mission: lol\nphases: {}\n");
    check(text.as_bytes(), "M1008");
}

#[test]
fn quadratic_aliases_of_a_mapping() {
    // Few aliases, but each copies a large mapping.
    let mut text = String::from("big: &big\n");
    for i in 0..5_000 {
        text.push_str(&format!("  k{i}: v\n"));
    }
    text.push_str("copies:\n");
    for _ in 0..100 {
        text.push_str("  - *big\n");
    }
    check(text.as_bytes(), "M1008");
}

#[test]
fn five_mebibytes() {
    let mut text = String::from("mission: big\nphases:\n  a:\n    run: [x]\n");
    while text.len() < 5 * 1024 * 1024 {
        text.push_str("# padding padding padding padding padding padding padding\n");
    }
    check(text.as_bytes(), "M1006");
    // Not text at all.
    check(&vec![0u8; 5 * 1024 * 1024], "M1006");
}

#[test]
fn many_documents() {
    check("---\nmission: a\n".repeat(10_000).as_bytes(), "M1009");
    check("---\n".repeat(10_000).as_bytes(), "M1009");
    check(b"mission: a\nphases: {}\n...\n---\nmission: b\n", "M1009");
}

#[test]
fn tab_indentation() {
    check(
        b"mission: tabs\nphases:\n\tbuild:\n\t\trun: [make]\n",
        "M1001",
    );
}

#[test]
fn nul_bytes() {
    check(b"mission: a\0b\nphases: {}\n", "M1001");
    check(b"\0\0\0\0", "M1001");
}

#[test]
fn unterminated_constructs() {
    check(b"mission: \"never closed\nphases: {}\n", "M1001");
    check(b"mission: x\nphases: { a: [", "M1001");
    check(b"mission: x\nphases:\n  a: *nowhere\n", "M1001");
}

#[test]
fn control_characters() {
    check(b"mission: a\x07b\nphases: {}\n", "M1001");
    check(b"mission: x\x1b[31m\nphases: {}\n", "M1001");
}

/// Degenerate but legal input stays legal: CRLF line ends, a BOM, a very long line.
#[test]
fn odd_but_valid_input_validates() {
    let crlf = b"mission: crlf\r\nphases:\r\n  a:\r\n    run: [make]\r\n";
    let bom = "\u{feff}mission: bom\nphases:\n  a:\n    run: [make]\n";
    let long = format!(
        "mission: long\ndescription: {}\nphases:\n  a:\n    run: [make]\n",
        "word ".repeat(50_000)
    );
    for bytes in [&crlf[..], bom.as_bytes(), long.as_bytes()] {
        let validated = validate_bytes("odd.yaml", bytes);
        assert!(
            validated.diagnostics.is_empty(),
            "{}",
            render_text(&validated.diagnostics, RenderOptions::default())
        );
        assert!(validated.mission.is_some());
    }
}

/// Many phases and long `needs` chains are fine (no recursion in the graph passes).
#[test]
fn long_needs_chain_plans() {
    let mut text = String::from("mission: chain\nphases:\n  p0:\n    uses: builtin/noop\n");
    for i in 1..2_000 {
        text.push_str(&format!(
            "  p{i}:\n    needs: [p{}]\n    uses: builtin/noop\n",
            i - 1
        ));
    }
    let validated = validate_bytes("chain.yaml", text.as_bytes());
    assert!(validated.diagnostics.is_empty());
    let plan = spectacular::plan::plan(validated.mission.expect("valid"));
    assert_eq!(plan.layers().len(), 2_000);
}

/// A long cycle is reported once, without recursion.
#[test]
fn long_cycle() {
    let n = 2_000;
    let mut text = String::from("mission: ring\nphases:\n");
    for i in 0..n {
        let prev = (i + n - 1) % n;
        text.push_str(&format!(
            "  p{i}:\n    needs: [p{prev}]\n    uses: builtin/noop\n"
        ));
    }
    check(text.as_bytes(), "M2010");
}

/// A value written with YAML escapes can hold control characters; the text rendering shows
/// them escaped instead of sending them to the terminal.
#[test]
fn escape_sequences_never_reach_the_terminal() {
    let bytes = b"mission: \"evil\\e[2J\\rname\"\nphases:\n  a:\n    run: [make]\n";
    check(bytes, "M2006");
    let validated = validate_bytes("hostile.yaml", bytes);
    let text = render_text(&validated.diagnostics, RenderOptions { color: false });
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "{text:?}"
    );
    assert!(text.contains("\\u{1b}[2J"), "{text}");
}
